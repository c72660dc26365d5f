"""The request value every layer passes down: :class:`HTTPRequest` (a leaf module).

The core builds an ``HTTPRequest`` (``_wire``), the attempt machine (``_attempt``) re-targets
it on a redirect, the transports send it as it is. It imports nothing from this package, so
every layer above can import it without an import cycle.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["DEFAULT_MAX_RESPONSE_SIZE", "HTTPRequest", "proxy_for", "redact_headers"]

#: The largest decoded body of a non-streaming answer (``max_response_size``).
DEFAULT_MAX_RESPONSE_SIZE = 256 * 1024 * 1024


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Headers fit for a log line: Authorization shown as ``Bearer ***``."""
    return {
        key: ("Bearer ***" if key.lower() == "authorization" else value)
        for key, value in headers.items()
    }


@dataclass
class HTTPRequest:
    """A request, fully built by the core: the transports send it as it is."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None = None
    stream: bool = False
    #: The largest decoded body accepted for a non-streaming answer (``None``: no limit).
    max_body: int | None = DEFAULT_MAX_RESPONSE_SIZE

    def __repr__(self) -> str:
        size = "None" if self.body is None else f"<{len(self.body)} bytes>"
        return (
            f"HTTPRequest(method={self.method!r}, url={self.url!r}, "
            f"headers={redact_headers(self.headers)!r}, body={size}, stream={self.stream!r})"
        )


def proxy_for(url: str) -> str | None:
    """The proxy the environment (HTTP(S)_PROXY, NO_PROXY) asks for ``url``, if any."""
    import urllib.request  # stdlib, but slow to import: only when a transport is built

    parts = urlsplit(url)
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(parts.scheme)
    if not proxy:
        return None
    if urllib.request.proxy_bypass_environment(parts.hostname or "", proxies):  # type: ignore[attr-defined]
        return None
    return proxy
