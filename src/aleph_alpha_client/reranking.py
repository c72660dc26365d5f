"""Reranking documents by relevance to a query (``POST rerank``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Optional

from ._validation import check_int, check_str, check_str_list

__all__ = ["RerankRequest", "RerankResponse", "RerankResult", "RerankUsage"]


@dataclass(frozen=True)
class RerankRequest:
    """Score ``documents`` by relevance to ``query``.

    Parameters:
        query: The query to rank the documents against.
        documents: The documents to rank (at least one).
        top_n: Return only the best ``top_n`` documents; omitted from the body when ``None``.

    Examples:
        >>> request = RerankRequest(
        ...     query="What is the capital of France?",
        ...     documents=["The capital of Brazil is Brasilia.", "The capital of France is Paris."],
        ...     top_n=1,
        ... )
    """

    query: str
    documents: Sequence[str]
    top_n: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The request body (without ``model``)."""
        body: dict[str, Any] = {"query": self.query, "documents": list(self.documents)}
        if self.top_n is not None:
            body["top_n"] = self.top_n
        return body

    def _validate(self) -> None:
        """Raise ``InvalidArgumentError`` naming the first invalid field."""
        check_str("query", self.query)
        check_str_list("documents", self.documents, non_empty=True)
        check_int("top_n", self.top_n, minimum=1, optional=True)


@dataclass(frozen=True)
class RerankResult:
    """One ranked document: its ``index`` in the request and its ``relevance_score``."""

    index: int
    relevance_score: float

    @classmethod
    def from_json(cls, json: Mapping[str, Any]) -> RerankResult:
        """Parse one entry of ``results``."""
        return cls(index=json["index"], relevance_score=json["relevance_score"])


@dataclass(frozen=True)
class RerankUsage:
    """Token usage of a rerank request (only ``total_tokens`` is meaningful)."""

    completion_tokens: int
    prompt_tokens: int
    total_tokens: int

    @classmethod
    def from_json(cls, json: Mapping[str, Any]) -> RerankUsage:
        """Parse the ``usage`` object."""
        return cls(
            completion_tokens=json["completion_tokens"],
            prompt_tokens=json["prompt_tokens"],
            total_tokens=json["total_tokens"],
        )


@dataclass(frozen=True)
class RerankResponse:
    """The answer to a :class:`RerankRequest`: results sorted by descending score."""

    #: The request id the server sent with this answer (not a field: never compared).
    request_id: ClassVar[Optional[str]] = None

    results: list[RerankResult]
    usage: RerankUsage

    @classmethod
    def from_json(cls, json: Mapping[str, Any]) -> RerankResponse:
        """Parse the API's JSON."""
        return cls(
            results=[RerankResult.from_json(r) for r in json["results"]],
            usage=RerankUsage.from_json(json["usage"]),
        )
