"""Response headers as users read them, and the request id in them (a leaf module)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["REQUEST_ID_HEADERS", "Headers", "request_id_of"]


class Headers(Mapping[str, str]):
    """Response headers, read-only: a name is found in any case (``headers["Content-Type"]``
    and ``headers["content-type"]`` alike); iteration gives the names in lower case."""

    __slots__ = ("_lower",)

    def __init__(self, headers: Mapping[str, str] | None = None) -> None:
        self._lower = {str(k).lower(): v for k, v in (headers or {}).items()}

    def __getitem__(self, name: str) -> str:
        return self._lower[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._lower

    def __iter__(self) -> Iterator[str]:
        return iter(self._lower)

    def __len__(self) -> int:
        return len(self._lower)

    def __repr__(self) -> str:
        return f"Headers({self._lower!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Headers, (self._lower,))


#: Response headers that carry the server's request id, in order of preference.
REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-trace-id")


def request_id_of(headers: Mapping[str, str]) -> str | None:
    """The request id in response ``headers`` (lower-case names), if any."""
    for name in REQUEST_ID_HEADERS:
        value = headers.get(name)
        if value:
            return value
    return None
