"""The commands other than chat: complete, embed, tokenize, detokenize, models, serve."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from ._app import EXIT_OK, App, UsageError

__all__ = [
    "run_complete",
    "run_detokenize",
    "run_embed",
    "run_models",
    "run_transcribe",
    "run_serve",
    "run_tokenize",
]


def _prompt_argument(app: App, value: str | None, what: str) -> str:
    if value is None or value == "-":
        return app.read_stdin(what)
    if not value.strip():
        raise UsageError(f"the {what} is empty")
    return value


# -- complete ---------------------------------------------------------------------------------


def run_complete(app: App) -> int:
    """The ``complete`` command."""
    from ..completion import CompletionRequest
    from ..prompt import Prompt

    args = app.args
    text = _prompt_argument(app, args.prompt, "prompt")
    extra: dict[str, Any] = {}
    if args.temperature is not None:
        extra["temperature"] = args.temperature
    request = CompletionRequest(
        prompt=Prompt.from_text(text),
        maximum_tokens=args.max_tokens,
        stop_sequences=args.stop,
        **extra,
    )
    with app.client() as client:
        if args.no_stream or args.json:
            response = client.complete(request, args.model)
            first = response.completions[0] if response.completions else None
            completion = (first.completion if first else None) or ""
            finish = first.finish_reason if first else None
            prompt_tokens = response.num_tokens_prompt_total
            generated = response.num_tokens_generated
            if args.json:
                app.out(
                    json.dumps(
                        {
                            "completion": completion,
                            "finish_reason": finish,
                            "num_tokens_prompt_total": prompt_tokens,
                            "num_tokens_generated": generated,
                            "model_version": response.model_version,
                        },
                        ensure_ascii=False,
                    )
                )
            else:
                app.out(completion, end="" if completion.endswith("\n") else "\n")
        else:
            stream = client.complete_with_streaming(request, args.model)
            last = ""
            try:
                for piece in stream.text_stream:
                    app.stdout.write(piece)
                    app.stdout.flush()
                    last = piece
                final = stream.get_final_response()
            finally:
                stream.close()
                if not last.endswith("\n"):
                    app.out("")
            first = final.completions[0] if final.completions else None
            finish = first.finish_reason if first else None
            prompt_tokens = final.num_tokens_prompt_total
            generated = final.num_tokens_generated
    if finish == "maximum_tokens" and not args.json:
        app.info("(the completion was cut at --max-tokens)")
    if args.usage:
        app.info(f"usage: {prompt_tokens} prompt + {generated} generated tokens")
    return EXIT_OK


# -- embed ------------------------------------------------------------------------------------


def _norm(vector: Sequence[float]) -> float:
    return math.sqrt(sum(x * x for x in vector))


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    na, nb = _norm(a), _norm(b)
    if na == 0 or nb == 0 or len(a) != len(b):
        return float("nan")
    return sum(x * y for x, y in zip(a, b)) / (na * nb)


def _short(text: str, width: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


#: Pairwise similarities are shown for at most this many texts.
_MAX_SIMILARITY_TEXTS = 10


def run_embed(app: App) -> int:
    """The ``embed`` command."""
    from ..embedding import BatchSemanticEmbeddingRequest, SemanticRepresentation
    from ..prompt import Prompt

    args = app.args
    texts: list[str] = list(args.texts)
    for text in texts:
        if not text.strip():
            raise UsageError("cannot embed an empty text")
    representation = SemanticRepresentation(args.representation)
    vectors: list[list[float]] = []
    with app.client() as client:
        # One request for many texts (the client splits it into API-sized batches).
        request = BatchSemanticEmbeddingRequest(
            prompts=[Prompt.from_text(text) for text in texts],
            representation=representation,
            compress_to_size=args.compress_to_size,
            normalize=args.normalize,
        )
        response = client.batch_semantic_embed(request, args.model)
        vectors = [list(vector) for vector in response.embeddings]
    if args.json:
        app.out(
            json.dumps(
                [{"text": t, "embedding": v} for t, v in zip(texts, vectors)],
                ensure_ascii=False,
            )
        )
        return EXIT_OK
    for index, (text, vector) in enumerate(zip(texts, vectors), 1):
        head = ", ".join(f"{x:.4f}" for x in vector[:4])
        more = ", ..." if len(vector) > 4 else ""
        app.out(
            f"[{index}] {_short(text)!r}: {len(vector)} dimensions, norm {_norm(vector):.4f}, "
            f"[{head}{more}]"
        )
    if 1 < len(vectors) <= _MAX_SIMILARITY_TEXTS:
        app.out("cosine similarity:")
        for i in range(len(vectors)):
            for j in range(i + 1, len(vectors)):
                app.out(f"  [{i + 1}] ~ [{j + 1}]: {_cosine(vectors[i], vectors[j]):.4f}")
    return EXIT_OK


# -- tokenize / detokenize --------------------------------------------------------------------


def _detokenize(app: App, ids: list[int], as_json: bool) -> int:
    from ..detokenization import DetokenizationRequest

    args = app.args
    with app.client() as client:
        response = client.detokenize(DetokenizationRequest(token_ids=ids), args.model)
    if as_json:
        app.out(json.dumps({"result": response.result}, ensure_ascii=False))
    else:
        app.out(response.result)
    return EXIT_OK


def run_tokenize(app: App) -> int:
    """The ``tokenize`` command (or detokenize with ``--detokenize``)."""
    from ..tokenization import TokenizationRequest

    args = app.args
    if args.detokenize:
        if args.text is not None:
            raise UsageError("give either TEXT or --detokenize IDS, not both")
        return _detokenize(app, list(args.detokenize), args.json)
    text = args.text
    if text is None or text == "-":
        text = app.read_stdin("text")
    if text == "":
        raise UsageError("the text is empty")
    with app.client() as client:
        response = client.tokenize(
            TokenizationRequest(prompt=text, tokens=True, token_ids=True), args.model
        )
    tokens = list(response.tokens or [])
    ids = list(response.token_ids or [])
    if args.json:
        app.out(json.dumps({"tokens": tokens, "token_ids": ids}, ensure_ascii=False))
        return EXIT_OK
    width = max([len(str(i)) for i in ids] + [2])
    for token_id, token in zip(ids, tokens):
        app.out(f"{token_id:>{width}}  {json.dumps(token, ensure_ascii=False)}")
    app.info(f"{len(ids)} tokens")
    return EXIT_OK


def run_detokenize(app: App) -> int:
    """The ``detokenize`` command."""
    return _detokenize(app, list(app.args.ids), app.args.json)


# -- models -----------------------------------------------------------------------------------


def _abilities(model: Mapping[str, Any]) -> str:
    parts: list[str] = []
    if model.get("aligned"):
        parts.append("chat")
    if model.get("image_support"):
        parts.append("image")
    types = model.get("embedding_types")
    if isinstance(types, list) and types:
        parts.append("embed")
    return ",".join(parts) or "-"


def _settings_abilities(settings: Any) -> str:
    words = []
    for word in settings.abilities():
        words.append("embed" if word.startswith("embed:") else word)
    return ",".join(words) or "-"


def run_models(app: App) -> int:
    """The ``models`` command: ``model-settings``, or ``models_available`` where it is missing."""
    from .._exceptions import APIStatusError

    with app.client() as client:
        try:
            settings = client.model_settings()
        except APIStatusError as err:
            if err.status_code not in (404, 405, 501):
                raise
            settings = None
            models = client.models()
    if settings is not None:
        if app.args.json:
            app.out(json.dumps([dict(s.raw) for s in settings], ensure_ascii=False, indent=2))
            return EXIT_OK
        rows = [
            (
                s.name,
                "" if s.max_context_size is None else str(s.max_context_size),
                _settings_abilities(s)
                + ("" if s.status in (None, "available") else f" ({s.status})"),
                _short(s.description or "", 60),
            )
            for s in settings
        ]
    else:
        if app.args.json:
            app.out(json.dumps(list(models), ensure_ascii=False, indent=2))
            return EXIT_OK
        rows = [
            (
                str(m.get("name", "?")),
                str(m.get("max_context_size", "")),
                _abilities(m),
                _short(str(m.get("description") or ""), 60),
            )
            for m in models
        ]
    header = ("NAME", "CONTEXT", "FEATURES", "DESCRIPTION")
    widths = [max(len(row[k]) for row in [header, *rows]) for k in range(3)]
    for row in [header, *rows]:
        app.out(
            f"{row[0]:<{widths[0]}}  {row[1]:>{widths[1]}}  {row[2]:<{widths[2]}}  {row[3]}".rstrip()
        )
    return EXIT_OK


# -- transcribe -------------------------------------------------------------------------------


def run_transcribe(app: App) -> int:
    """The ``transcribe`` command: the text of an audio file (``-`` reads stdin's bytes)."""
    from pathlib import Path

    args = app.args
    audio: Any
    if args.file == "-":
        binary = getattr(app.stdin, "buffer", None)
        if binary is None:
            raise UsageError("FILE -: stdin cannot be read as bytes")
        audio = binary.read()
        if not audio:
            raise UsageError("the audio on stdin is empty")
    else:
        path = Path(args.file)
        if not path.is_file():
            reason = "is a directory" if path.is_dir() else "no such file"
            raise UsageError(f"{args.file}: {reason}")
        audio = path
    with app.client() as client:
        result = client.transcribe(audio, args.model, language=args.language)
    if args.json:
        app.out(
            json.dumps(
                {
                    "transcription": result.transcription,
                    "language": result.language,
                    "segments": [
                        {"start": s.start, "end": s.end, "text": s.text} for s in result.segments
                    ],
                },
                ensure_ascii=False,
            )
        )
    elif args.segments:
        for segment in result.segments:
            app.out(f"[{segment.start:7.2f} -> {segment.end:7.2f}] {segment.text}")
    else:
        app.out(result.transcription)
    return EXIT_OK


# -- serve ------------------------------------------------------------------------------------


def run_serve(app: App) -> int:
    """The ``serve`` command: the emulator until Ctrl-C."""
    from ..emulator.server import run_server

    args = app.args
    if args.faults:
        from ..emulator.faults import parse_fault_spec

        try:
            parse_fault_spec(args.faults)
        except ValueError as err:
            raise UsageError(f"--faults {args.faults!r}: {err}") from None
    try:
        run_server(
            host=args.bind_host,
            port=args.port,
            token=args.serve_token,
            faults=args.faults,
            seed=args.seed,
            latency=args.latency,
            stream_latency=args.stream_latency,
        )
    except KeyboardInterrupt:  # Ctrl-C is the way to stop it, even before it is listening
        pass
    except OSError as err:
        raise UsageError(
            f"cannot listen on {args.bind_host}:{args.port}: {err.strerror or err}"
        ) from None
    return EXIT_OK
