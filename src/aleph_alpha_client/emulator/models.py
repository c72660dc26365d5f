"""The emulator's built-in model table.

Each model has a set of capabilities; a request for a capability the model lacks gets the API's
``400 {"error": ..., "code": "MISSING_CAPABILITY"}``, an unknown model gets
``400 {"error": ..., "code": "UNKNOWN_MODEL"}``.

Capabilities: ``complete``, ``chat``, ``embed`` (``embed``, ``semantic_embed``,
``batch_semantic_embed``, ``embeddings``), ``instructable_embed`` (also ``embeddings``),
``evaluate`` (also ``explain``), ``rerank``, ``translate``, ``tools`` (chat answers carry
``"tool_calls": []``), ``image`` (image prompt items / image content accepted),
``reasoning`` (chat answers carry a ``reasoning_content`` field), ``think`` (chat answers start
with ``<think>...</think>`` in the content), ``transcribe`` (``POST transcribe``).
Tokenize, detokenize and the tokenizer download work for every model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["MODELS", "ModelInfo"]


@dataclass(frozen=True)
class ModelInfo:
    """One emulated model."""

    name: str
    description: str
    capabilities: frozenset[str]
    max_context_size: int = 8192
    maximum_completion_tokens: int = 8192
    model_version: str = ".unknown."
    #: Number of transformer layers (``embed``: ``layer_<n>`` for n in 0..layers).
    layers: int = 32
    #: Width of ``embed`` and (uncompressed) ``semantic_embed`` vectors.
    embedding_size: int = 4096
    embedding_types: tuple[str, ...] = field(default=())
    aligned: bool = False

    def to_settings_json(self) -> dict[str, object]:
        """The model in the ``model-settings`` shape (PhariaInference 4.7)."""
        if "instructable_embed" in self.capabilities:
            embedding_type = "instructable"
        elif "embed" in self.capabilities:
            embedding_type = "semantic"
        else:
            embedding_type = "none"
        chat = "chat" in self.capabilities
        return {
            "name": self.name,
            "status": "available",
            "description": self.description,
            "multimodal": "image" in self.capabilities,
            "max_context_size": self.max_context_size,
            "semantic_embedding": embedding_type == "semantic",
            "completion_type": "full" if "complete" in self.capabilities else "none",
            "embedding_type": embedding_type,
            "aligned": self.aligned,
            "chat": chat,
            "prompt_template": _TEMPLATE
            if chat
            else "{% promptrange instruction %}{{prompt}}{% endpromptrange %}",
            "maximum_completion_tokens": self.maximum_completion_tokens,
            "model_card": None,
        }

    def to_json(self) -> dict[str, object]:
        """The model in the ``models_available`` shape."""
        return {
            "name": self.name,
            "description": self.description,
            "max_context_size": self.max_context_size,
            "hostings": [],
            "image_support": "image" in self.capabilities,
            "qa_support": False,
            "summarization_support": False,
            "embedding_types": list(self.embedding_types),
            "maximum_completion_tokens": self.maximum_completion_tokens,
            "aligned": self.aligned,
        }


_TEMPLATE = (
    "<|begin_of_text|>{% for message in messages %}<|start_header_id|>{{message.role}}"
    "<|end_header_id|>\n\n{{message.content}}<|eot_id|>{% endfor %}"
    "<|start_header_id|>assistant<|end_header_id|>\n\n"
)
_GEN = frozenset({"complete", "evaluate"})
_CHAT = frozenset({"complete", "chat", "evaluate"})

MODELS: dict[str, ModelInfo] = {
    m.name: m
    for m in (
        ModelInfo(
            "luminous-base",
            "Multilingual model trained on English, German, French, Spanish and Italian.",
            _GEN | {"embed", "image"},
            max_context_size=2048,
            maximum_completion_tokens=2048,
            model_version="2022-04",
            layers=40,
            embedding_size=5120,
            embedding_types=("symmetric", "document", "query"),
        ),
        ModelInfo(
            "luminous-extended",
            "Larger multilingual base model.",
            _GEN | {"embed", "image"},
            max_context_size=2048,
            maximum_completion_tokens=2048,
            model_version="2022-06",
            layers=46,
            embedding_size=5120,
            embedding_types=("symmetric", "document", "query"),
        ),
        ModelInfo(
            "llama-3.1-8b-instruct",
            "Llama 3.1 8B instruction-tuned chat model.",
            _CHAT,
            aligned=True,
        ),
        ModelInfo(
            "llama-3.3-70b-instruct",
            "Llama 3.3 70B instruction-tuned chat model.",
            _CHAT | {"tools"},
            aligned=True,
        ),
        ModelInfo(
            "qwen3-32b-tool",
            "Qwen3 32B with tool calling and structured output.",
            _CHAT | {"tools"},
            aligned=True,
        ),
        ModelInfo(
            "pharia-1-llm-7b-control",
            "Pharia-1 7B control model.",
            _CHAT,
            aligned=True,
        ),
        ModelInfo(
            "dummy-model",
            "A small multimodal chat model for tests.",
            _CHAT | {"image"},
            aligned=True,
        ),
        ModelInfo(
            "qwen3-32b-reasoning",
            "Qwen3 32B reasoning model (answers carry reasoning_content).",
            _CHAT | {"reasoning"},
            aligned=True,
        ),
        ModelInfo(
            "deepseek-r1-distill-llama-8b",
            "DeepSeek R1 distilled reasoning model (thinks in <think> tags in the content).",
            _CHAT | {"think"},
            aligned=True,
        ),
        ModelInfo(
            "whisper-large-v3-turbo",
            "Whisper speech-to-text model.",
            frozenset({"transcribe"}),
            max_context_size=448,
            maximum_completion_tokens=448,
        ),
        ModelInfo(
            "pharia-1-embedding-4608-control",
            "Pharia-1 instructable embedding model (4608 dimensions).",
            frozenset({"instructable_embed"}),
            embedding_size=4608,
            embedding_types=("instructable",),
        ),
        ModelInfo(
            "pharia-1-embedding-4608-control-with-256-embedding",
            "Pharia-1 instructable embedding model (4608 dimensions).",
            frozenset({"instructable_embed"}),
            embedding_size=4608,
            embedding_types=("instructable",),
        ),
        ModelInfo(
            "bge-reranker-v2-m3",
            "BGE multilingual reranker.",
            frozenset({"rerank"}),
        ),
        ModelInfo(
            "pharia-1-mt-translation",
            "Pharia-1 machine translation model.",
            frozenset({"translate"}),
        ),
    )
}
