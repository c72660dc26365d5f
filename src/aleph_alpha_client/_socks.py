"""A SOCKS5 client handshake (RFC 1928, username/password auth of RFC 1929), sans-I/O.

:class:`Socks5Handshake` says what to send and how many bytes it needs next; the sync and
async transports drive it over their sockets. ``socks5h`` sends the host name for the proxy
to resolve; ``socks5`` sends an address the caller resolved.
"""

from __future__ import annotations

import ipaddress
import struct

from ._exceptions import APIConnectionError

__all__ = ["Socks5Handshake"]

_REPLIES = {
    1: "general SOCKS server failure",
    2: "connection not allowed by ruleset",
    3: "network unreachable",
    4: "host unreachable",
    5: "connection refused",
    6: "TTL expired",
    7: "command not supported",
    8: "address type not supported",
}


class Socks5Handshake:
    """The steps of one handshake: ``send`` bytes, then ``need`` bytes back, ``receive`` them.

    Usage: ``out = hs.start()``; while ``not hs.done``: send ``out`` if any, read exactly
    ``hs.need`` bytes, ``out = hs.receive(data)``.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str | None,
        password: str | None,
        shown: str,
        url: str,
    ) -> None:
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.shown = shown
        self.url = url
        self.need = 0
        self.done = False
        self._step = ""
        self._got = b""

    def _fail(self, reason: str, retryable: bool = True) -> APIConnectionError:
        return APIConnectionError(
            f"SOCKS5 proxy {self.shown} for {self.url}: {reason}",
            url=self.url,
            retryable=retryable,
        )

    def start(self) -> bytes:
        """The greeting: the methods we offer (no auth, and username/password if we have it)."""
        self._step = "method"
        self.need = 2
        if self.username is not None:
            return b"\x05\x02\x00\x02"
        return b"\x05\x01\x00"

    def _connect_request(self) -> bytes:
        host = self.host
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            name = host.encode("idna")
            if not 0 < len(name) < 256:
                raise self._fail("host name too long for SOCKS5") from None
            dest = b"\x03" + bytes([len(name)]) + name
        else:
            if address.version == 4:
                dest = b"\x01" + address.packed
            else:
                dest = b"\x04" + address.packed
        self._step = "reply"
        self.need = 5  # VER REP RSV ATYP and the first byte of the address
        return b"\x05\x01\x00" + dest + struct.pack(">H", self.port)

    def receive(self, data: bytes) -> bytes:
        """Take the ``need`` bytes asked for; return what to send next (maybe nothing)."""
        if len(data) < self.need:
            raise self._fail("the proxy closed the connection during the handshake")
        step = self._step
        if step == "method":
            if data[0] != 5:
                raise self._fail("not a SOCKS5 proxy (bad version in its answer)")
            method = data[1]
            if method == 0:
                return self._connect_request()
            if method == 2 and self.username is not None:
                user = (self.username or "").encode()
                password = (self.password or "").encode()
                if len(user) > 255 or len(password) > 255:
                    raise self._fail("username or password longer than 255 bytes")
                self._step = "auth"
                self.need = 2
                return b"\x01" + bytes([len(user)]) + user + bytes([len(password)]) + password
            if method == 0xFF:
                why = "it accepts none of our authentication methods"
                if self.username is None:
                    why += " (it may need a username and password in the proxy URL)"
                raise self._fail(why, retryable=False)
            raise self._fail(f"it chose an authentication method we did not offer ({method})")
        if step == "auth":
            if data[1] != 0:
                raise self._fail("username/password authentication failed", retryable=False)
            return self._connect_request()
        if step == "reply":
            if data[0] != 5:
                raise self._fail("bad version in the CONNECT reply")
            if data[1] != 0:
                reason = _REPLIES.get(data[1], f"error {data[1]}")
                raise self._fail(f"CONNECT to {self.host}:{self.port} failed: {reason}")
            atyp = data[3]
            if atyp == 1:
                rest = 4 - 1 + 2
            elif atyp == 4:
                rest = 16 - 1 + 2
            elif atyp == 3:
                rest = data[4] + 2
            else:
                raise self._fail(f"bad address type {atyp} in the CONNECT reply")
            self._step = "bound"
            self.need = rest
            return b""
        if step == "bound":
            self.done = True
            self.need = 0
            return b""
        raise self._fail("handshake out of order")
