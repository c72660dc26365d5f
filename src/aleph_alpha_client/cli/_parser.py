"""The argument parser of the ``aleph-alpha`` command (stdlib argparse only)."""

from __future__ import annotations

import argparse
from typing import Any

from ..version import __version__

__all__ = ["CHAT_MODEL", "COMPLETION_MODEL", "EMBEDDING_MODEL", "GLOBAL_DEFAULTS", "build_parser"]

#: Default models of the subcommands.
CHAT_MODEL = "llama-3.1-8b-instruct"
COMPLETION_MODEL = "luminous-base"
TRANSCRIPTION_MODEL = "whisper-large-v3-turbo"
EMBEDDING_MODEL = "luminous-base"
TOKENIZER_MODEL = "llama-3.1-8b-instruct"

#: Defaults of the global options (they are parsed with SUPPRESS so that a value given before
#: the subcommand is not overwritten by the subcommand's parser; these fill the gaps).
GLOBAL_DEFAULTS: dict[str, Any] = {
    "api_host": None,
    "token": None,
    "emulator": False,
    "timeout": 305.0,
    "retries": 3,
}

_DESCRIPTION = """\
Talk to the Aleph Alpha API from the shell: chat, complete, embed, tokenize, list models, or
serve the offline emulator.

The API is chosen by --host (or ALEPH_ALPHA_BASE_URL, default https://api.aleph-alpha.com)
and the token by --token (or ALEPH_ALPHA_API_KEY, or AA_TOKEN). With --emulator the command
runs against an in-process offline emulator: no token, no network.

Results go to stdout, progress and errors to stderr. Exit status: 0 ok, 1 API or connection
error, 2 usage error (bad arguments, missing token, unreadable file), 130 interrupted."""

_EPILOG = """\
examples:
  aleph-alpha chat --emulator "What is the capital of Spain?"
  aleph-alpha chat                              # interactive chat (/reset, /exit)
  echo "Summarise: ..." | aleph-alpha chat --no-stream
  aleph-alpha complete "An apple a day" --max-tokens 20
  aleph-alpha embed "hello" "hi there" --compress-to-size 128
  aleph-alpha tokenize "Hello world" ; aleph-alpha detokenize 1207 1314
  aleph-alpha models --json
  aleph-alpha serve --port 8000 --faults "503:0.1"

Run "aleph-alpha COMMAND --help" for the options of a command; the global options are
accepted before or after the command. See docs/cli.md."""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the hand-wrapped descriptions and shows defaults where they help."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=30)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0 or value != value:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    value = _non_negative_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text!r}")
    return value


def _temperature(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value < 0 or value != value:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
    return value


def _token_id(text: str) -> int:
    try:
        return int(text.strip().strip(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer token id, got {text!r}") from None


def _global_options() -> argparse.ArgumentParser:
    """The options every API command takes (defaults suppressed; see GLOBAL_DEFAULTS)."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("global options (before or after the command)")
    group.add_argument(
        "--host",
        dest="api_host",
        metavar="URL",
        default=argparse.SUPPRESS,
        help="API base URL (default: $ALEPH_ALPHA_BASE_URL, else the public API)",
    )
    group.add_argument(
        "--token",
        metavar="TOKEN",
        default=argparse.SUPPRESS,
        help="API token (default: $ALEPH_ALPHA_API_KEY, then $AA_TOKEN)",
    )
    group.add_argument(
        "--emulator",
        action="store_true",
        default=argparse.SUPPRESS,
        help="run against an in-process offline emulator (no token, no network)",
    )
    group.add_argument(
        "--timeout",
        type=_positive_float,
        metavar="SECONDS",
        default=argparse.SUPPRESS,
        help="time limit of one attempt in seconds (default: 305)",
    )
    group.add_argument(
        "--retries",
        type=_non_negative_int,
        metavar="N",
        default=argparse.SUPPRESS,
        help="retries on connection errors and 408/429/5xx answers (default: 3)",
    )
    return parent


def _add_command(
    subparsers: Any,
    name: str,
    parents: list[argparse.ArgumentParser],
    summary: str,
    description: str,
    epilog: str,
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name,
        parents=parents,
        help=summary,
        description=description,
        epilog=epilog,
        formatter_class=_Formatter,
    )
    parser.set_defaults(command=name)
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The ``aleph-alpha`` parser with all subcommands."""
    parent = _global_options()
    parser = argparse.ArgumentParser(
        prog="aleph-alpha",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=_Formatter,
        parents=[parent],
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"aleph-alpha {__version__} (aleph_alpha_client)",
    )
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")

    # -- chat ---------------------------------------------------------------------------------
    chat = _add_command(
        subparsers,
        "chat",
        [parent],
        "chat with a model (streamed; interactive without a prompt)",
        """\
Chat with a model. With a PROMPT the answer is streamed token by token to stdout.

Without a PROMPT (and with stdin a terminal), or with -i, the chat is interactive: each line
you type is a message, the conversation is kept and sent with every turn. Commands: /reset
(forget the conversation, keep --system), /exit or /quit (or Ctrl-D). Ctrl-C stops an answer;
at the prompt it quits.

Without a PROMPT and with stdin a pipe or file, the whole of stdin is the prompt; PROMPT "-"
reads stdin too.""",
        """\
examples:
  aleph-alpha chat "What is the capital of Spain?"
  aleph-alpha chat --system "Answer in French." -i
  aleph-alpha chat --model dummy-model --image cat.png "What is in the picture?"
  aleph-alpha chat --schema person.schema.json "Invent a person."
  aleph-alpha chat --tool weather:get_weather "Weather in Berlin?"
  aleph-alpha chat --model qwen3-32b-reasoning --reasoning-effort high "Why is the sky blue?"
  aleph-alpha chat --json --usage "Hi" | jq .content""",
    )
    chat.add_argument("prompt", nargs="?", metavar="PROMPT", help="the user message")
    chat.add_argument(
        "-m", "--model", default=CHAT_MODEL, help=f"the chat model (default: {CHAT_MODEL})"
    )
    chat.add_argument("-s", "--system", metavar="TEXT", help="a system prompt")
    chat.add_argument(
        "-i",
        "--interactive",
        action="store_true",
        help="interactive chat (a PROMPT becomes the first message)",
    )
    chat.add_argument(
        "-t", "--temperature", type=_temperature, metavar="T", help="sampling temperature (>= 0)"
    )
    chat.add_argument(
        "--max-tokens",
        type=_positive_int,
        metavar="N",
        help="the longest answer in tokens",
    )
    chat.add_argument(
        "--image",
        action="append",
        metavar="FILE",
        help="attach an image file to the (first) user message; repeatable",
    )
    chat.add_argument(
        "--schema",
        metavar="FILE",
        help="a JSON schema file: the answer is JSON following it (printed as JSON)",
    )
    chat.add_argument(
        "--tool",
        action="append",
        metavar="MODULE:FUNCTION",
        help="a Python function the model may call (run locally, results sent back); repeatable",
    )
    chat.add_argument(
        "--reasoning-effort",
        choices=("low", "medium", "high"),
        help="how much a reasoning model thinks before it answers",
    )
    chat.add_argument(
        "--no-reasoning",
        action="store_true",
        help="do not show a reasoning model's thinking (shown dimmed on a terminal, "
        "else on stderr)",
    )
    chat.add_argument(
        "--json",
        action="store_true",
        help="print the answer as one JSON object: content, finish_reason, usage, tool_calls, "
        "model, id, reasoning_content",
    )
    chat.add_argument(
        "--no-stream", action="store_true", help="wait for the whole answer, then print it"
    )
    chat.add_argument("--usage", action="store_true", help="print token usage to stderr")

    # -- complete -----------------------------------------------------------------------------
    complete = _add_command(
        subparsers,
        "complete",
        [parent],
        "complete a prompt (streamed)",
        """\
Complete a prompt with a base model; the completion is streamed to stdout.
Without a PROMPT (or with "-") the prompt is read from stdin.""",
        """\
examples:
  aleph-alpha complete "An apple a day" --max-tokens 20
  aleph-alpha complete --stop "." --json "The three primary colours are" """,
    )
    complete.add_argument("prompt", nargs="?", metavar="PROMPT", help="the text to complete")
    complete.add_argument(
        "-m",
        "--model",
        default=COMPLETION_MODEL,
        help=f"the model (default: {COMPLETION_MODEL})",
    )
    complete.add_argument(
        "--max-tokens", type=_positive_int, metavar="N", help="the most tokens to generate"
    )
    complete.add_argument(
        "-t", "--temperature", type=_temperature, metavar="T", help="sampling temperature (>= 0)"
    )
    complete.add_argument(
        "--stop",
        action="append",
        metavar="TEXT",
        help="stop generating at this text; repeatable",
    )
    complete.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object: completion, finish_reason, token counts",
    )
    complete.add_argument(
        "--no-stream", action="store_true", help="wait for the whole completion, then print it"
    )
    complete.add_argument("--usage", action="store_true", help="print token counts to stderr")

    # -- embed --------------------------------------------------------------------------------
    embed = _add_command(
        subparsers,
        "embed",
        [parent],
        "semantic embeddings of texts",
        """\
Semantic embeddings of one or more texts (one batch request per 100 texts). Prints a short summary:
dimensions, norm and first values of each vector, and the cosine similarities between the
texts (up to 10 texts); --json prints the vectors.""",
        """\
examples:
  aleph-alpha embed "hello" "hi there" "goodbye"
  aleph-alpha embed --representation query --compress-to-size 128 --json "hello" """,
    )
    embed.add_argument("texts", nargs="+", metavar="TEXT", help="the texts to embed")
    embed.add_argument(
        "-m", "--model", default=EMBEDDING_MODEL, help=f"the model (default: {EMBEDDING_MODEL})"
    )
    embed.add_argument(
        "--representation",
        choices=("symmetric", "document", "query"),
        default="symmetric",
        help="symmetric: compare texts with each other; document/query: search "
        "(default: symmetric)",
    )
    embed.add_argument(
        "--compress-to-size",
        type=_positive_int,
        metavar="N",
        help="compress the vectors to N dimensions (the API supports 128)",
    )
    embed.add_argument("--normalize", action="store_true", help="return unit-length vectors")
    embed.add_argument(
        "--json",
        action="store_true",
        help='print JSON: [{"text": ..., "embedding": [...]}, ...]',
    )

    # -- batch --------------------------------------------------------------------------------
    batch = _add_command(
        subparsers,
        "batch",
        [parent],
        "run a JSONL file of requests (OpenAI Batch API format)",
        """\
Run every request of INPUT (JSONL, one {"custom_id", "method", "url", "body"} object a line;
url is /chat/completions, /complete, /semantic_embed, /batch_semantic_embed, /embed or
/embeddings) with adaptive concurrency, and append one result line per request to OUTPUT
({"id", "custom_id", "response": {"status_code", "request_id", "body"}, "error"}).
Progress and a summary go to stderr. Exit status 0 when every request succeeded, 1 when some
failed (their error lines are in OUTPUT). After Ctrl-C or a crash, --resume continues.""",
        """\
examples:
  aleph-alpha batch requests.jsonl -o results.jsonl
  aleph-alpha batch requests.jsonl -o results.jsonl --resume --concurrency 32 --rps 50""",
    )
    batch.add_argument("input", metavar="INPUT.jsonl", help="the requests")
    batch.add_argument(
        "-o", "--output", required=True, metavar="OUTPUT.jsonl", help="where results go"
    )
    batch.add_argument(
        "--resume", action="store_true", help="skip the requests OUTPUT already answers"
    )
    batch.add_argument(
        "--concurrency",
        type=_positive_int,
        default=16,
        metavar="N",
        help="requests in flight at the start and at most (default: 16)",
    )
    batch.add_argument(
        "--max-concurrency",
        type=_positive_int,
        metavar="N",
        help="let the concurrency grow up to N (default: --concurrency)",
    )
    batch.add_argument(
        "--rps", type=_positive_float, metavar="R", help="at most R requests started per second"
    )
    batch.add_argument("-m", "--model", help="the model of requests whose body names none")
    batch.add_argument("--no-progress", action="store_true", help="no progress on stderr")

    # -- tokenize / detokenize ----------------------------------------------------------------
    tokenize = _add_command(
        subparsers,
        "tokenize",
        [parent],
        "the tokens and token ids of a text",
        """\
Show how a model tokenizes a text: one line per token with its id. With --detokenize IDS
the ids are turned back into text instead.""",
        """\
examples:
  aleph-alpha tokenize "Hello world"
  aleph-alpha tokenize --json "Hello world"
  aleph-alpha tokenize --detokenize 1207 1314""",
    )
    tokenize.add_argument(
        "text", nargs="?", metavar="TEXT", help="the text (default: stdin when not a terminal)"
    )
    tokenize.add_argument(
        "-m", "--model", default=TOKENIZER_MODEL, help=f"the model (default: {TOKENIZER_MODEL})"
    )
    tokenize.add_argument(
        "--detokenize",
        nargs="+",
        type=_token_id,
        metavar="ID",
        help="turn these token ids back into text",
    )
    tokenize.add_argument(
        "--json", action="store_true", help='print {"tokens": [...], "token_ids": [...]}'
    )

    detokenize = _add_command(
        subparsers,
        "detokenize",
        [parent],
        "turn token ids back into text",
        "Turn token ids back into text.",
        "example:\n  aleph-alpha detokenize 1207 1314",
    )
    detokenize.add_argument("ids", nargs="+", type=_token_id, metavar="ID", help="token ids")
    detokenize.add_argument(
        "-m", "--model", default=TOKENIZER_MODEL, help=f"the model (default: {TOKENIZER_MODEL})"
    )
    detokenize.add_argument("--json", action="store_true", help='print {"result": ...}')

    # -- models -------------------------------------------------------------------------------
    models = _add_command(
        subparsers,
        "models",
        [parent],
        "list the models the API serves",
        "List the models the API serves: a table of names, context sizes and abilities.",
        "examples:\n  aleph-alpha models\n  aleph-alpha models --json",
    )
    models.add_argument("--json", action="store_true", help="print the API's JSON list")

    # -- transcribe ---------------------------------------------------------------------------
    transcribe = _add_command(
        subparsers,
        "transcribe",
        [parent],
        "transcribe an audio file",
        "Transcribe an audio file with a transcription model; the text goes to stdout.\n"
        'FILE "-" reads the audio from stdin.',
        "examples:\n  aleph-alpha transcribe talk.mp3 --language de\n"
        "  aleph-alpha transcribe --segments --model whisper-large-v3-turbo talk.wav",
    )
    transcribe.add_argument("file", metavar="FILE", help="the audio file")
    transcribe.add_argument(
        "-m",
        "--model",
        default=TRANSCRIPTION_MODEL,
        help=f"the transcription model (default: {TRANSCRIPTION_MODEL})",
    )
    transcribe.add_argument(
        "-l", "--language", metavar="CODE", help="the language (ISO 639-1, e.g. de, en)"
    )
    transcribe.add_argument(
        "--segments", action="store_true", help="print the timed segments, one per line"
    )
    transcribe.add_argument(
        "--json", action="store_true", help="print {transcription, language, segments}"
    )

    # -- serve --------------------------------------------------------------------------------
    serve = subparsers.add_parser(
        "serve",
        help="run the offline emulator of the API until Ctrl-C",
        description="""\
Run the offline emulator of the Aleph Alpha API on a local port until Ctrl-C (or SIGTERM).
Point a client at the URL it prints (on stderr): Client(token=..., host=URL), or
aleph-alpha --host URL --token TOKEN chat ...

Here --host and --token are the address to listen on and the token the emulator requires,
not the API's.""",
        epilog="""\
fault spec (--faults), comma-separated items:
  503:0.1              10 % of requests get a 503 (any status 400-599)
  429:0.2:retry_after=1
  reset:0.05           5 % of connections are reset
  error:0.1:code=OVERLOADED:after=2:path=chat/*
  latency=0.2          0.2 s before every answer; stream_latency=0.05 between events
  seed=7               seed of the random draws

examples:
  aleph-alpha serve --port 8000
  aleph-alpha serve --token secret --faults "503:0.1,latency=0.2" """,
        formatter_class=_Formatter,
    )
    serve.set_defaults(command="serve")
    serve.add_argument(
        "--host",
        dest="bind_host",
        default="127.0.0.1",
        metavar="ADDRESS",
        help="address to listen on (default: 127.0.0.1)",
    )
    serve.add_argument(
        "--port",
        type=_non_negative_int,
        default=8000,
        help="port to listen on; 0 picks a free one (default: 8000)",
    )
    serve.add_argument(
        "--token",
        dest="serve_token",
        metavar="TOKEN",
        help="require this bearer token (default: accept any request)",
    )
    serve.add_argument("--faults", metavar="SPEC", help="inject faults (see below)")
    serve.add_argument("--seed", type=int, default=0, help="seed of the fault draws (default: 0)")
    serve.add_argument(
        "--latency",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait before every answer",
    )
    serve.add_argument(
        "--stream-latency",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait between stream events",
    )
    return parser
