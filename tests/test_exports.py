"""The public names and module paths of the official client 11.5.1 are all here, and the
package imports light (official-client-reference.md §1.1)."""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import subprocess
import sys
import textwrap

import pytest

import aleph_alpha_client

# official-client-reference.md §1.1: the official ``__all__``.
OFFICIAL_TOP_LEVEL = [
    # clients and errors
    "Client",
    "AsyncClient",
    "QuotaError",
    "BusyError",
    "POOLING_OPTIONS",
    # prompt
    "Prompt",
    "Text",
    "TextControl",
    "Tokens",
    "TokenControl",
    "Image",
    "ImageControl",
    "ControlTokenOverlap",
    "PromptTemplate",
    "Document",
    # completion
    "CompletionRequest",
    "CompletionResponse",
    # chat
    "ChatRequest",
    "ChatResponse",
    "Message",
    # tokens
    "TokenizationRequest",
    "TokenizationResponse",
    "DetokenizationRequest",
    "DetokenizationResponse",
    # embeddings
    "EmbeddingRequest",
    "EmbeddingResponse",
    "EmbeddingV2Request",
    "EmbeddingV2Response",
    "SemanticEmbeddingRequest",
    "SemanticEmbeddingResponse",
    "BatchSemanticEmbeddingRequest",
    "BatchSemanticEmbeddingResponse",
    "SemanticRepresentation",
    # evaluate
    "EvaluationRequest",
    "EvaluationResponse",
    # explain
    "ExplanationRequest",
    "ExplanationResponse",
    "Explanation",
    "ExplanationPostprocessing",
    "CustomGranularity",
    "PromptGranularity",
    "TargetGranularity",
    "TextPromptItemExplanation",
    "ImagePromptItemExplanation",
    "TokenPromptItemExplanation",
    "TargetPromptItemExplanation",
    "TextScore",
    "ImageScore",
    "TokenScore",
    "TargetScore",
    # rerank
    "RerankRequest",
    "RerankResponse",
    "RerankResult",
    "RerankUsage",
    # utils
    "load_base64_from_file",
    "load_base64_from_url",
    "__version__",
]

# The chat names the seed (the chat API description) wants at the top level too.
CHAT_TOP_LEVEL = [
    "TextMessage",
    "Role",
    "FinishReason",
    "StreamOptions",
    "ChatStreamChunk",
    "Usage",
    "JSONSchema",
    "Image",
    "ToolCall",
    "FunctionCall",
    "ToolFunction",
]

# official-client-reference.md §1.1: module paths users import from, with their names.
SUBMODULES: dict[str, list[str]] = {
    "aleph_alpha_client.aleph_alpha_client": [
        "Client",
        "AsyncClient",
        "QuotaError",
        "BusyError",
        "RETRY_STATUS_CODES",
        "DEFAULT_REQUEST_TIMEOUT",
        "_raise_for_status",
    ],
    "aleph_alpha_client.chat": [
        "ChatRequest",
        "ChatResponse",
        "Message",
        "Role",
        "TextMessage",
        "FinishReason",
        "StreamOptions",
        "Usage",
        "ChatStreamChunk",
        "ToolCall",
        "FunctionCall",
        "ToolFunction",
        "stream_chat_item_from_json",
        "process_chat_stream",
    ],
    "aleph_alpha_client.completion": [
        "CompletionRequest",
        "CompletionResponse",
        "CompletionResult",
        "StreamChunk",
        "StreamSummary",
        "CompletionSummary",
        "CompletionResponseStreamItem",
        "stream_item_from_json",
    ],
    "aleph_alpha_client.detokenization": ["DetokenizationRequest", "DetokenizationResponse"],
    "aleph_alpha_client.document": ["Document"],
    "aleph_alpha_client.embedding": [
        "EmbeddingRequest",
        "EmbeddingResponse",
        "EmbeddingV2Request",
        "EmbeddingV2Response",
        "EmbeddingV2ResponseData",
        "SemanticEmbeddingRequest",
        "SemanticEmbeddingResponse",
        "BatchSemanticEmbeddingRequest",
        "BatchSemanticEmbeddingResponse",
        "InstructableEmbeddingRequest",
        "InstructableEmbeddingResponse",
        "SemanticRepresentation",
        "Usage",
        "EmbeddingVector",
    ],
    "aleph_alpha_client.evaluation": ["EvaluationRequest", "EvaluationResponse"],
    "aleph_alpha_client.explanation": [
        "ExplanationRequest",
        "ExplanationResponse",
        "Explanation",
        "ExplanationPostprocessing",
        "CustomGranularity",
        "PromptGranularity",
        "TargetGranularity",
        "TextPromptItemExplanation",
        "ImagePromptItemExplanation",
        "TokenPromptItemExplanation",
        "TargetPromptItemExplanation",
        "TextScore",
        "ImageScore",
        "TokenScore",
        "TargetScore",
        "TextScoreWithRaw",
        "TargetScoreWithRaw",
        "prompt_granularity_to_json",
    ],
    "aleph_alpha_client.prompt": [
        "Prompt",
        "Text",
        "TextControl",
        "Tokens",
        "TokenControl",
        "Image",
        "ImageControl",
        "ControlTokenOverlap",
        "Cropping",
        "PromptItem",
    ],
    "aleph_alpha_client.prompt_template": ["PromptTemplate"],
    "aleph_alpha_client.reranking": [
        "RerankRequest",
        "RerankResponse",
        "RerankResult",
        "RerankUsage",
    ],
    "aleph_alpha_client.steering": [
        "SteeringPairedExample",
        "SteeringConceptCreationRequest",
        "SteeringConceptCreationResponse",
    ],
    "aleph_alpha_client.structured_output": ["JSONSchema", "ResponseFormat"],
    "aleph_alpha_client.tokenization": ["TokenizationRequest", "TokenizationResponse"],
    "aleph_alpha_client.translation": [
        "TranslationRequest",
        "TranslationResponse",
        "TranslationSegment",
    ],
    "aleph_alpha_client.utils": ["load_base64_from_file", "load_base64_from_url"],
    "aleph_alpha_client.version": ["MIN_API_VERSION", "user_agent_headers"],
}

HEAVY = ["aiohttp", "urllib3", "pydantic", "PIL", "tokenizers", "liquid", "tqdm", "requests"]


def test_the_official_list_has_57_names() -> None:
    assert len(OFFICIAL_TOP_LEVEL) == len(set(OFFICIAL_TOP_LEVEL)) == 57


@pytest.mark.parametrize("name", OFFICIAL_TOP_LEVEL + CHAT_TOP_LEVEL)
def test_official_top_level_name_is_importable_and_exported(name: str) -> None:
    assert hasattr(aleph_alpha_client, name)
    assert name in aleph_alpha_client.__all__


def test_star_import_gives_every_official_name() -> None:
    namespace: dict[str, object] = {}
    exec("from aleph_alpha_client import *", namespace)
    missing = [n for n in OFFICIAL_TOP_LEVEL + CHAT_TOP_LEVEL if n not in namespace]
    assert not missing
    for name in aleph_alpha_client.__all__:
        assert namespace[name] is getattr(aleph_alpha_client, name)


def test_all_names_resolve_and_are_unique() -> None:
    names = aleph_alpha_client.__all__
    assert len(names) == len(set(names)), "duplicates in __all__"
    for name in names:
        assert getattr(aleph_alpha_client, name, None) is not None, name


def _isort_style_key(name: str) -> tuple[int, str]:
    # ruff RUF022's default order: SCREAMING_CASE, then CamelCase, then everything else.
    if name.isupper():
        return (0, name)
    if name[:1].isupper():
        return (1, name)
    return (2, name)


def test_all_is_sorted() -> None:
    names = list(aleph_alpha_client.__all__)
    assert names in (sorted(names), sorted(names, key=_isort_style_key))


def test_every_public_top_level_name_is_in_all() -> None:
    # Public classes and functions of this package reachable at the top level.
    public = {
        name
        for name, value in vars(aleph_alpha_client).items()
        if not name.startswith("_")
        and str(getattr(value, "__module__", "")).startswith("aleph_alpha_client")
    }
    assert {"Client", "CompletionRequest", "load_base64_from_url"} <= public
    assert public <= set(aleph_alpha_client.__all__), sorted(
        public - set(aleph_alpha_client.__all__)
    )


@pytest.mark.parametrize("module_name", sorted(SUBMODULES))
def test_official_module_paths_hold_their_names(module_name: str) -> None:
    module = importlib.import_module(module_name)
    missing = [name for name in SUBMODULES[module_name] if not hasattr(module, name)]
    assert not missing, f"{module_name} lacks {missing}"
    # The names are the package's own objects, not copies.
    for name in SUBMODULES[module_name]:
        top = getattr(aleph_alpha_client, name, None)
        if top is not None and name != "Usage":
            assert getattr(module, name) is top, f"{module_name}.{name}"


@pytest.mark.parametrize("module_name", sorted(SUBMODULES))
def test_submodule_all_resolves(module_name: str) -> None:
    module = importlib.import_module(module_name)
    for name in getattr(module, "__all__", []):
        assert hasattr(module, name), f"{module_name}.__all__ names missing {name}"


def test_the_two_usage_classes_stay_apart() -> None:
    from aleph_alpha_client import chat, embedding

    assert chat.Usage is not embedding.Usage
    assert aleph_alpha_client.Usage is chat.Usage
    assert [f for f in chat.Usage.__dataclass_fields__] == [
        "completion_tokens",
        "prompt_tokens",
        "total_tokens",
    ]
    assert [f for f in embedding.Usage.__dataclass_fields__] == ["prompt_tokens", "total_tokens"]


def test_constants_of_the_old_module() -> None:
    from aleph_alpha_client.aleph_alpha_client import (
        DEFAULT_REQUEST_TIMEOUT,
        RETRY_STATUS_CODES,
    )

    assert DEFAULT_REQUEST_TIMEOUT == 305
    assert isinstance(RETRY_STATUS_CODES, frozenset)
    # The official set; this client may retry more (409), never less.
    assert RETRY_STATUS_CODES >= {408, 429, 500, 502, 503, 504}
    assert aleph_alpha_client.POOLING_OPTIONS == ["mean", "max", "last_token", "abs_max"]


@pytest.mark.parametrize(
    ("status", "builtin"),
    [
        (400, ValueError),
        (401, PermissionError),
        (402, aleph_alpha_client.QuotaError),
        (403, RuntimeError),
        (404, RuntimeError),
        (408, TimeoutError),
        (422, RuntimeError),
        (429, RuntimeError),
        (500, RuntimeError),
        (502, RuntimeError),
        (503, aleph_alpha_client.BusyError),
        (504, RuntimeError),
        (418, RuntimeError),
    ],
)
def test_raise_for_status_keeps_the_official_mapping(status: int, builtin: type) -> None:
    from aleph_alpha_client.aleph_alpha_client import _raise_for_status

    with pytest.raises(builtin) as info:
        _raise_for_status(status, '{"error": "x"}')
    assert info.value.args == (status, '{"error": "x"}')


def test_raise_for_status_passes_success() -> None:
    from aleph_alpha_client.aleph_alpha_client import _raise_for_status

    _raise_for_status(200, "ok")
    _raise_for_status(201, "")


def test_version_module() -> None:
    from aleph_alpha_client.version import MIN_API_VERSION, user_agent_headers

    assert MIN_API_VERSION == "1.19.0"
    headers = user_agent_headers()
    assert headers == {"User-Agent": f"Aleph-Alpha-Python-Client-{aleph_alpha_client.__version__}"}


def test_distribution_version_is_12_or_later() -> None:
    version = importlib.metadata.version("aleph-alpha-client")
    assert int(version.split(".")[0]) >= 12
    assert aleph_alpha_client.__version__ == version


def test_official_module_names_exist() -> None:
    for name in (
        "aleph_alpha_client",
        "chat",
        "completion",
        "detokenization",
        "document",
        "embedding",
        "evaluation",
        "explanation",
        "prompt",
        "prompt_template",
        "reranking",
        "steering",
        "structured_output",
        "tokenization",
        "translation",
        "utils",
        "version",
    ):
        importlib.import_module(f"aleph_alpha_client.{name}")


def _modules_after(code: str) -> list[str]:
    """Run ``code`` in a fresh interpreter; which heavy modules did it import?"""
    script = textwrap.dedent(
        f"""
        import json, sys
        {code}
        heavy = {HEAVY!r}
        print(json.dumps(sorted(m for m in heavy if m in sys.modules)))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    result: list[str] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_import_is_light() -> None:
    assert _modules_after("import aleph_alpha_client") == []


def test_every_official_module_imports_light_and_constructors_load_no_transport() -> None:
    modules = "; ".join(f"import {m}" for m in sorted(SUBMODULES))
    code = (
        f"{modules}; from aleph_alpha_client import *; "
        "Client('t', host='http://127.0.0.1:9'); AsyncClient('t', host='http://127.0.0.1:9')"
    )
    assert _modules_after(code) == []


def test_the_weight_check_can_fail() -> None:
    assert _modules_after("import json as _j; import PIL.Image") == ["PIL"]
