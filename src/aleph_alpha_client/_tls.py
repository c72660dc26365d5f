"""TLS helpers: client certificates, what a failed verification means, TLS inside TLS.

``ssl.SSLSocket`` cannot run a second TLS session over an ``SSLSocket`` (the inner handshake
would go to the raw socket: ``[SSL: UNEXPECTED_MESSAGE]``). :class:`TLSOverTLS` runs the inner
session (to the API) in an ``ssl.SSLObject`` over memory buffers and carries its records over
the outer TLS socket (to an ``https://`` proxy); it offers the few socket methods the sync
transport uses. The async transport uses ``loop.start_tls`` over the proxy's TLS transport,
which asyncio supports from Python 3.11 on: before, :func:`async_tls_in_tls_error` refuses it
up front.
"""

from __future__ import annotations

import os
import socket
import ssl
import sys
from typing import Any

from ._exceptions import InvalidArgumentError, InvalidArgumentTypeError

__all__ = [
    "ASYNC_TLS_IN_TLS",
    "TLSOverTLS",
    "async_tls_in_tls_error",
    "check_cert",
    "check_ssl_context",
    "describe_verify_error",
    "rejected_by_server",
]

CertArg = str | os.PathLike[str] | tuple[Any, Any] | None

#: Whether asyncio can start TLS over a TLS transport (``loop.start_tls`` on the transport of
#: an ``https://`` proxy): Python 3.11 and later. Before, it raises a bare ``TypeError`` after
#: the proxy was asked to open the tunnel.
ASYNC_TLS_IN_TLS = sys.version_info >= (3, 11)


def async_tls_in_tls_error(
    proxy: str, url: str, supported: bool | None = None
) -> InvalidArgumentError | None:
    """The error for ``AsyncClient`` reaching the ``https://`` API ``url`` through the
    ``https://`` proxy ``proxy`` (shown without credentials) where asyncio cannot do TLS
    inside TLS (``supported``: default :data:`ASYNC_TLS_IN_TLS`); None where it can."""
    if ASYNC_TLS_IN_TLS if supported is None else supported:
        return None
    version = ".".join(str(part) for part in sys.version_info[:2])
    return InvalidArgumentError(
        f"proxy: AsyncClient cannot reach {url} through the https:// proxy {proxy} on Python "
        f"{version}: TLS to the API inside TLS to the proxy needs asyncio's start_tls over a TLS "
        "connection, which Python 3.11 added. Use an http:// proxy (HTTPS_PROXY=http://...; "
        "the API's TLS still runs end to end inside its CONNECT tunnel), the sync Client "
        "(it does TLS inside TLS on every Python), or Python 3.11+"
    )


def check_cert(cert: Any) -> tuple[str, str | None] | None:
    """``cert=``: a PEM file with certificate and key, or ``(certificate, key)`` paths.

    The files are loaded once into a scratch context so a bad path or a key that does not
    match fails now, naming the argument.
    """
    if cert is None:
        return None
    if isinstance(cert, (str, os.PathLike)):
        pair: tuple[str, str | None] = (os.fspath(cert), None)
    elif isinstance(cert, tuple) and len(cert) == 2:
        certfile, keyfile = cert
        if not isinstance(certfile, (str, os.PathLike)) or not isinstance(
            keyfile, (str, os.PathLike)
        ):
            raise InvalidArgumentTypeError(
                "cert: expected (certificate path, key path), "
                f"got ({type(certfile).__name__}, {type(keyfile).__name__})"
            )
        pair = (os.fspath(certfile), os.fspath(keyfile))
    else:
        raise InvalidArgumentTypeError(
            f"cert: expected a PEM path or a (certificate, key) tuple, got {type(cert).__name__}"
        )
    scratch = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        scratch.load_cert_chain(pair[0], pair[1])
    except FileNotFoundError as err:
        raise InvalidArgumentError(f"cert: no such file {err.filename!r}") from None
    except (OSError, ssl.SSLError) as err:
        raise InvalidArgumentError(
            f"cert: cannot load the client certificate and key ({err})"
        ) from None
    return pair


def check_ssl_context(context: Any) -> ssl.SSLContext | None:
    """``ssl_context=``: an ``ssl.SSLContext`` for client connections, or None."""
    if context is None:
        return None
    if not isinstance(context, ssl.SSLContext):
        raise InvalidArgumentTypeError(
            f"ssl_context: expected an ssl.SSLContext, got {type(context).__name__}"
        )
    if context.protocol == ssl.PROTOCOL_TLS_SERVER:
        raise InvalidArgumentError("ssl_context: a server-side context cannot open connections")
    return context


_KINDS = {
    62: "hostname mismatch",
    64: "IP address mismatch",
    10: "certificate expired",
    9: "certificate not yet valid",
    18: "self-signed certificate (unknown CA)",
    19: "self-signed certificate in the chain (unknown CA)",
    20: "unknown CA (no trusted issuer)",
    21: "unknown CA (cannot verify the first certificate)",
    2: "unknown CA (cannot get the issuer certificate)",
    23: "certificate revoked",
    26: "certificate not meant for a TLS server",
}


def describe_verify_error(err: ssl.SSLCertVerificationError, host: str) -> str:
    """Which check failed, in words, and what to do."""
    code = getattr(err, "verify_code", None)
    text = getattr(err, "verify_message", None) or str(err)
    kind = _KINDS.get(code or -1, "verification failed")
    hint = ""
    if "unknown CA" in kind:
        hint = (
            "; trust a private CA with REQUESTS_CA_BUNDLE=/path/ca.pem, SSL_CERT_FILE, or "
            "ssl_context="
        )
    elif "mismatch" in kind:
        hint = "; connect by the name the certificate is issued for"
    return f"the TLS certificate of {host} failed verification: {kind} ({text}){hint}"


_REJECTIONS = (
    "CERTIFICATE_REQUIRED",
    "BAD_CERTIFICATE",
    "UNKNOWN_CA",
    "CERTIFICATE_EXPIRED",
    "CERTIFICATE_REVOKED",
    "CERTIFICATE_UNKNOWN",
    "UNSUPPORTED_CERTIFICATE",
    "ACCESS_DENIED",
)


def rejected_by_server(err: ssl.SSLError) -> str | None:
    """A TLS alert from the server about our client certificate, in words (else None)."""
    reason = (getattr(err, "reason", None) or "").upper()
    if "ALERT" not in reason:
        return None
    for name in _REJECTIONS:
        if name in reason:
            words = reason.split("ALERT_", 1)[-1].replace("_", " ").lower()
            return (
                f"the server refused the TLS handshake ({words}): it wants a client "
                "certificate it trusts; pass cert= or ssl_context="
            )
    return None


class TLSOverTLS:
    """A TLS session to the API carried inside the TLS socket to an ``https://`` proxy."""

    def __init__(self, outer: ssl.SSLSocket, context: ssl.SSLContext, server_hostname: str):
        self._outer = outer
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._in, self._out, server_hostname=server_hostname)

    # -------------------------------------------------------------- plumbing

    def _flush(self) -> None:
        data = self._out.read()
        if data:
            self._outer.sendall(data)

    def _fill(self) -> bool:
        """Read one piece from the proxy into the inner session; False at EOF."""
        data = self._outer.recv(65536)
        if not data:
            self._in.write_eof()
            return False
        self._in.write(data)
        return True

    def do_handshake(self) -> None:
        """Run the inner handshake (under the outer socket's timeout)."""
        while True:
            try:
                self._tls.do_handshake()
                self._flush()
                return
            except ssl.SSLWantReadError:
                self._flush()
                if not self._fill():
                    raise ConnectionResetError("the proxy closed the tunnel during TLS") from None

    # -------------------------------------------------------------- socket API used by _sync_http

    def recv(self, size: int) -> bytes:
        """Up to ``size`` decrypted bytes; b"" at the end of the stream."""
        while True:
            try:
                return self._tls.read(size)
            except ssl.SSLWantReadError:
                self._flush()
                if not self._fill():
                    try:
                        return self._tls.read(size)
                    except (ssl.SSLZeroReturnError, ssl.SSLEOFError, ssl.SSLWantReadError):
                        return b""
            except ssl.SSLZeroReturnError:
                return b""

    def sendall(self, data: bytes) -> None:
        """Encrypt and send all of ``data``."""
        view = memoryview(data)
        while view:
            try:
                written = self._tls.write(view)
            except ssl.SSLWantReadError:
                self._flush()
                if not self._fill():
                    raise BrokenPipeError("the proxy closed the tunnel") from None
                continue
            view = view[written:]
        self._flush()

    def still_open(self) -> bool:
        """Whether an idle connection can carry a request (no data, no EOF waiting)."""
        timeout = self._outer.gettimeout()
        try:
            self._outer.setblocking(False)
            try:
                data = self._outer.recv(65536)
            except (ssl.SSLWantReadError, BlockingIOError):
                return True
            if not data:
                return False
            self._in.write(data)
            try:
                self._tls.read(1)
            except ssl.SSLWantReadError:
                return True  # records without data (session tickets)
            return False
        except OSError:
            return False
        finally:
            try:
                self._outer.settimeout(timeout)
            except OSError:
                pass

    def settimeout(self, value: float | None) -> None:
        self._outer.settimeout(value)

    def gettimeout(self) -> float | None:
        return self._outer.gettimeout()

    def setblocking(self, flag: bool) -> None:
        self._outer.setblocking(flag)

    def fileno(self) -> int:
        return self._outer.fileno()

    def setsockopt(self, *args: Any) -> None:
        self._outer.setsockopt(*args)

    def shutdown(self, how: int) -> None:
        self._outer.shutdown(how)

    def close(self) -> None:
        self._outer.close()

    @property
    def family(self) -> socket.AddressFamily:
        return self._outer.family
