"""Socket-level helpers shared by both transports (``_sync_http``, ``_async_http``).

URL targets, proxy parsing, the request payload, the TLS context and the mapping of OS, TLS
and protocol errors to our typed errors. Neither transport imports the other: both import this.
"""

from __future__ import annotations

import io
import os
import socket
import ssl
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ._exceptions import (
    APIConnectionError,
    APITimeoutError,
    IncompleteStreamError,
    InvalidArgumentError,
)
from ._http11 import IncompleteBodyError, ProtocolError, serialize_request
from ._proxy import Proxy, ProxyRules, parse_proxy
from ._tls import describe_verify_error, rejected_by_server

if TYPE_CHECKING:
    from ._request import HTTPRequest

__all__ = [
    "CA_BUNDLE_VARIABLES",
    "BodyBuffer",
    "Proxy",
    "ProxyRules",
    "Target",
    "connect_error",
    "io_error",
    "make_ssl_context",
    "parse_proxy",
    "request_payload",
    "split_url",
    "tls_error",
]

_Key = tuple[str, str, int]


class Target:
    """A URL split into what a connection and a request line need."""

    __slots__ = ("authority", "authority_host", "host", "key", "port", "scheme", "target", "url")

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise InvalidArgumentError(f"url: expected an http or https URL, got {url!r}")
        host = parts.hostname
        if not host:
            raise InvalidArgumentError(f"url: expected a URL with a host, got {url!r}")
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError as err:
            raise InvalidArgumentError(f"url: expected a valid port, got {url!r}") from err
        default = 443 if scheme == "https" else 80
        shown = f"[{host}]" if ":" in host else host
        self.scheme = scheme
        self.host = host
        self.port = port
        self.key: _Key = (scheme, host, port)
        self.authority_host = shown  # IPv6 addresses in brackets
        self.authority = shown if port == default else f"{shown}:{port}"
        path = parts.path or "/"
        self.target = path + ("?" + parts.query if parts.query else "")
        self.url = url


_targets: dict[str, Target] = {}


def split_url(url: str) -> Target:
    """The :class:`Target` of a URL (cached: clients send to few URLs)."""
    target = _targets.get(url)
    if target is None:
        target = Target(url)
        if len(_targets) > 512:
            _targets.clear()
        _targets[url] = target
    return target


def request_payload(request: HTTPRequest, target: Target, proxy: Proxy | None) -> bytes:
    """The bytes of a request: absolute-form through an http proxy, origin-form otherwise."""
    if proxy is not None and target.scheme == "http" and not proxy.socks:
        extra = {"Proxy-Authorization": proxy.auth} if proxy.auth else None
        return serialize_request(
            request.method, request.url, target.authority, request.headers, request.body, extra
        )
    return serialize_request(
        request.method, target.target, target.authority, request.headers, request.body
    )


#: Environment variables naming a CA bundle to trust (as requests and curl read them).
CA_BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


def make_ssl_context(verify: bool, cert: tuple[str, str | None] | None = None) -> ssl.SSLContext:
    """The TLS context of a transport (made once).

    ``cert`` is a client certificate (and key) for mutual TLS. It trusts the system's CA store (OpenSSL also reads ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``)
    and, when set, the bundle named by ``REQUESTS_CA_BUNDLE`` or ``CURL_CA_BUNDLE``, so a
    corporate CA configured for the official client keeps working.
    """
    context = ssl.create_default_context()
    if verify:
        for name in CA_BUNDLE_VARIABLES:
            bundle = os.environ.get(name)
            if bundle:
                try:
                    context.load_verify_locations(cafile=bundle)
                except (OSError, ssl.SSLError) as err:
                    raise InvalidArgumentError(
                        f"{name}={bundle!r}: cannot load that CA bundle ({err})"
                    ) from None
                break
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if cert is not None:
        try:
            context.load_cert_chain(cert[0], cert[1])
        except (OSError, ssl.SSLError) as err:
            raise InvalidArgumentError(
                f"cert: cannot load the client certificate ({err})"
            ) from None
    return context


# ------------------------------------------------------------------------------ errors


def _short(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    return text if len(text) < 300 else text[:300] + "..."


def tls_error(err: ssl.SSLError, url: str) -> APIConnectionError:
    """A TLS failure; the server refusing our client certificate is not retried."""
    rejected = rejected_by_server(err)
    if rejected is not None:
        return APIConnectionError(f"{rejected} ({url}; not retried)", url=url, retryable=False)
    return APIConnectionError(f"TLS error talking to {url}: {_short(err)}", url=url)


def connect_error(err: BaseException, url: str) -> APIConnectionError:
    """Map an error while opening a connection (DNS, TCP, TLS, proxy)."""
    if isinstance(err, APIConnectionError):
        return err
    if isinstance(err, socket.gaierror):
        return APIConnectionError(f"could not resolve the host of {url}", url=url)
    if isinstance(err, TimeoutError):
        return APITimeoutError(f"connecting to {url} timed out", url=url, phase="connect")
    if isinstance(err, ssl.SSLCertVerificationError):
        host = urlsplit(url).hostname or url
        return APIConnectionError(
            f"{describe_verify_error(err, host)} ({url}; not retried)", url=url, retryable=False
        )
    if isinstance(err, ssl.SSLError):
        return tls_error(err, url)
    if isinstance(err, ProtocolError):
        return APIConnectionError(f"malformed answer from the proxy for {url}: {err}", url=url)
    return APIConnectionError(f"could not connect to {url}: {_short(err)}", url=url)


def io_error(
    err: BaseException, url: str, *, streaming: bool = False
) -> APIConnectionError | IncompleteStreamError:
    """Map an error while sending or reading (after the connection was opened)."""
    if isinstance(err, APIConnectionError):
        return err
    if isinstance(err, TimeoutError):
        if streaming:
            return APITimeoutError(f"the stream went silent ({url})", url=url, phase="idle")
        return APITimeoutError(f"reading the answer timed out ({url})", url=url, phase="read")
    if isinstance(err, IncompleteBodyError):
        if streaming:
            return IncompleteStreamError(
                f"the connection broke in the middle of the stream ({url}): {err}"
            )
        return APIConnectionError(f"connection to {url} failed: {err}", url=url)
    if isinstance(err, ProtocolError):
        return APIConnectionError(f"malformed HTTP answer from {url}: {err}", url=url)
    if isinstance(err, ssl.SSLError):
        return tls_error(err, url)
    if streaming and isinstance(err, (ConnectionResetError, BrokenPipeError)):
        return IncompleteStreamError(f"the connection broke in the middle of the stream ({url})")
    return APIConnectionError(f"connection to {url} failed: {_short(err)}", url=url)


class BodyBuffer:
    """The pieces of a body gathered into one ``bytes`` without ever holding a large one twice.

    ``b"".join(pieces)`` needs the pieces and the joined copy at once (2x the body). Pieces are
    kept in a list while they are small in total (a join is the fastest way then); past
    ``SPILL_SIZE`` they go into an ``io.BytesIO`` as they arrive and are dropped, and
    :meth:`take` hands out the BytesIO's own buffer (CPython returns it without a copy once it
    is trimmed; growing it is a ``realloc``).
    """

    __slots__ = ("_io", "_pieces", "_size")

    #: Total size above which pieces are not kept side by side.
    SPILL_SIZE = 1 << 20

    def __init__(self) -> None:
        self._pieces: list[bytes] = []
        self._size = 0
        self._io: io.BytesIO | None = None

    def __bool__(self) -> bool:
        return self._size > 0

    def __len__(self) -> int:
        return self._size

    def add(self, piece: bytes) -> None:
        """Append ``piece``."""
        if not piece:
            return
        self._size += len(piece)
        if self._io is not None:
            self._io.write(piece)
            return
        self._pieces.append(piece)
        if self._size >= self.SPILL_SIZE:
            buffer = self._io = io.BytesIO()
            for kept in self._pieces:
                buffer.write(kept)
            self._pieces = []

    def take(self) -> bytes:
        """Everything added so far, as one ``bytes``; the buffer is empty afterwards."""
        self._size = 0
        if self._io is not None:
            data = self._io.getvalue()
            self._io = None
            return data
        pieces, self._pieces = self._pieces, []
        if len(pieces) == 1:
            return pieces[0]
        return b"".join(pieces)
