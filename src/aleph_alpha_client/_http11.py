"""A sans-I/O HTTP/1.1 client: request serializer and incremental response parser.

No sockets here: the sync and async transports feed received bytes to
:class:`ResponseParser` and send what :func:`serialize_request` builds. The parser handles
the status line, headers (repeated ones joined with ``", "``), 1xx answers (skipped),
``Content-Length``, ``chunked`` (extensions and trailers) and read-until-close bodies,
bodiless answers (HEAD, 204, 304, 2xx to CONNECT), the keep-alive decision and incremental
``gzip`` / ``deflate`` decoding. Malformed input raises :class:`ProtocolError`; a body that
ends before its framing says raises :class:`IncompleteBodyError`.
"""

from __future__ import annotations

import re
import zlib
from typing import TYPE_CHECKING, Any

from ._exceptions import APITimeoutError, InvalidArgumentError

if TYPE_CHECKING:
    from ._config import Timeout

__all__ = [
    "MAX_DECODE_STEP",
    "MAX_ERROR_BODY",
    "MAX_HEAD_SIZE",
    "SEPARATE_BODY_SIZE",
    "BodyTooLargeError",
    "IncompleteBodyError",
    "ProtocolError",
    "ResponseParser",
    "serialize_request",
]

#: The largest response head (status line + headers) accepted.
MAX_HEAD_SIZE = 64 * 1024
#: The most decoded bytes one decompression step produces (a gzip bomb expands in steps).
MAX_DECODE_STEP = 256 * 1024
#: The most body bytes of an error answer (status >= 400) kept; the rest is not read.
MAX_ERROR_BODY = 1024 * 1024
#: The codings this parser decodes.
_DECODABLE = ("gzip", "x-gzip", "deflate")
#: A body this size or larger is not copied into the head's bytes: the transports send it in a
#: write of its own, right after the head (one rule for both transports).
SEPARATE_BODY_SIZE = 64 * 1024
#: The longest chunk-size line (with extensions) accepted.
_MAX_CHUNK_LINE = 4096

_NONE = 0  # no body
_LENGTH = 1  # Content-Length
_CHUNKED = 2  # Transfer-Encoding: chunked
_CLOSE = 3  # until the connection closes

# chunked sub-states
_C_SIZE = 0  # waiting for a chunk-size line
_C_DATA = 1  # inside chunk data
_C_CRLF = 2  # waiting for the CRLF after chunk data
_C_TRAILER = 3  # reading trailer lines after the last chunk

_VALUE_CONTROL = re.compile("[\x00-\x1f\x7f]")  # no control characters (TAB too) in a value
_NAME_BREAK = re.compile("[\r\n\x00]")  # a header name must not end the line
_TARGET_BAD = re.compile("[\x00-\x20\x7f]")  # no spaces or controls in a request target
_HEX = re.compile(rb"[0-9A-Fa-f]{1,15}")
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,15})(?:;[^\r\n]*)?\r\n")


class ProtocolError(Exception):
    """The peer sent something that is not valid HTTP/1.1; the message says what."""


class IncompleteBodyError(ProtocolError):
    """The connection ended before the body its framing announced was complete."""


class BodyTooLargeError(ProtocolError):
    """The decoded body grew past the parser's ``max_body``."""


def _check_header(name: str, value: str) -> None:
    if _VALUE_CONTROL.search(value) or _NAME_BREAK.search(name):
        raise InvalidArgumentError(
            f"header {name!r}: expected a name and value without control characters, got "
            "control characters (CR, LF, TAB, NUL, ...)"
        )
    if not name or ":" in name or " " in name or "\t" in name:
        raise InvalidArgumentError(f"header {name!r}: expected a valid header name, got {name!r}")


def serialize_request(
    method: str,
    target: str,
    host: str,
    headers: dict[str, str],
    body: bytes | None,
    extra_headers: dict[str, str] | None = None,
) -> bytes:
    """The request head (and a small body) as bytes ready for one ``sendall``.

    ``Host`` and ``Content-Length`` are added unless ``headers`` has them; ``body`` is
    appended only when it is below ``SEPARATE_BODY_SIZE`` (send larger bodies separately).
    """
    if any(ch in method for ch in " \r\n\0") or not method:
        raise InvalidArgumentError(f"method: expected a valid HTTP method, got {method!r}")
    if _TARGET_BAD.search(target):
        raise InvalidArgumentError(
            "url: expected a request target without spaces or control characters, got one with them"
        )
    if not target.isascii():
        raise InvalidArgumentError(
            "url: expected an ASCII path (percent-encode it), got one with non-ASCII characters"
        )
    lines = [f"{method} {target} HTTP/1.1"]
    has_host = has_length = False
    for name, value in headers.items():
        _check_header(name, value)
        low = name.lower()
        if low == "host":
            has_host = True
        elif low == "content-length":
            has_length = True
        lines.append(f"{name}: {value}")
    if extra_headers:
        for name, value in extra_headers.items():
            _check_header(name, value)
            lines.append(f"{name}: {value}")
    if not has_host:
        _check_header("Host", host)
        lines.insert(1, f"Host: {host}")
    if not has_length and (body is not None or method in ("POST", "PUT", "PATCH")):
        lines.append(f"Content-Length: {0 if body is None else len(body)}")
    lines.append("\r\n")
    try:
        head = "\r\n".join(lines).encode("latin-1")
    except UnicodeEncodeError as err:
        raise InvalidArgumentError(
            "headers: expected latin-1 encodable names and values (encode non-ASCII values), "
            "got characters beyond U+00FF"
        ) from err
    if body and len(body) < SEPARATE_BODY_SIZE:
        return head + body
    return head


class _Decoder:
    """Incremental gzip/deflate decoding in bounded steps (deflate: zlib-wrapped, or raw).

    ``feed`` stores compressed input; ``read(limit)`` returns at most ``limit`` decoded bytes
    (zlib ``max_length``), keeping the unconsumed input for the next call, so one network read
    never expands into more than ``limit`` bytes at once. ``more`` says whether another
    ``read`` may return bytes without new input.
    """

    __slots__ = ("_full", "_obj", "_raw_fallback", "_started", "_tail", "coding")

    def __init__(self, coding: str) -> None:
        self.coding = coding
        if coding == "gzip" or coding == "x-gzip":
            self._obj: Any = zlib.decompressobj(16 + zlib.MAX_WBITS)
            self._raw_fallback = False
        else:
            self._obj = zlib.decompressobj()
            self._raw_fallback = True
        self._tail = b""
        self._full = False  # the last read hit its limit: zlib may hold more output
        self._started = False

    def feed(self, data: bytes) -> None:
        if data:
            self._tail = self._tail + data if self._tail else data

    @property
    def more(self) -> bool:
        tail = self._tail
        if self._full:
            return True
        if not tail or self._obj.eof:
            return False
        return self._started or not self._raw_fallback or len(tail) >= 2

    def read(self, limit: int) -> bytes:
        tail = self._tail
        if not tail and not self._full:
            return b""
        if not self._started and self._raw_fallback and len(tail) < 2:
            return b""  # zlib or raw deflate is only known from the 2-byte header: wait for it
        obj = self._obj
        try:
            out: bytes = obj.decompress(tail, limit)
        except zlib.error as err:
            if self._raw_fallback and not self._started:
                self._raw_fallback = False
                self._obj = zlib.decompressobj(-zlib.MAX_WBITS)
                return self.read(limit)
            raise ProtocolError(f"the body could not be decompressed: {err}") from err
        self._started = True
        self._tail = obj.unconsumed_tail
        self._full = len(out) >= limit and not obj.eof
        return out

    def finish(self) -> bytes:
        """The input ended: the last bytes (few: ``read`` drained the input first)."""
        if self._tail and not self._started:  # a 1-byte body: not zlib, try raw deflate
            self._raw_fallback = False
            self._obj = zlib.decompressobj(-zlib.MAX_WBITS)
            out = self.read(MAX_DECODE_STEP)
            if self.more:
                raise ProtocolError("the body could not be decompressed")
        else:
            out = b""
        obj = self._obj
        try:
            rest: bytes = obj.flush()
        except zlib.error as err:
            raise ProtocolError(f"the body could not be decompressed: {err}") from err
        out += rest
        if not obj.eof and (self._started or out):
            raise ProtocolError(f"the {self.coding} body ended before its end marker")
        return out


def _codings(value: str, *, transfer: bool) -> list[str]:
    """The codings of a ``Transfer-Encoding``/``Content-Encoding`` value, in the order applied."""
    out = []
    for item in value.split(","):
        coding = item.strip().lower()
        if not coding or coding == "identity":
            continue
        if transfer and coding == "chunked":
            continue
        out.append(coding)
    return out


class ResponseParser:
    """Parses one response at a time from the bytes of a connection.

    ``feed(data)`` returns the decoded body bytes it found (``b""`` if none); ``head_done``,
    ``status``, ``headers`` are set once the head is in, ``done`` once the message ended and
    all of it was handed out. ``keep_alive`` says whether the connection can carry another
    request afterwards.

    Decoding runs in steps of at most :data:`MAX_DECODE_STEP` bytes: while ``pending`` is
    true, ``feed(b"")`` returns the next step without new input. ``max_body`` (``None``: no
    limit) bounds the decoded body: more raises :class:`BodyTooLargeError`. The body of an
    error answer (status >= 400) is cut after ``max_error_body`` bytes (``truncated`` is then
    true, the message counts as done and the connection is not reused).
    """

    __slots__ = (
        "_buf",
        "_chunk_left",
        "_chunk_state",
        "_connect",
        "_decoders",
        "_framed",
        "_left",
        "_mode",
        "_no_body",
        "body_size",
        "done",
        "head_done",
        "headers",
        "keep_alive",
        "max_body",
        "max_error_body",
        "reason",
        "status",
        "truncated",
        "version",
    )

    def __init__(
        self,
        method: str = "GET",
        *,
        max_body: int | None = None,
        max_error_body: int | None = MAX_ERROR_BODY,
    ) -> None:
        self._no_body = method == "HEAD"
        self._connect = method == "CONNECT"
        self._buf = b""
        self._mode = _NONE
        self._left = 0
        self._chunk_state = _C_SIZE
        self._chunk_left = 0
        self._decoders: list[_Decoder] = []
        self._framed = False  # the framing says the message ended
        self.max_body = max_body
        self.max_error_body = max_error_body
        self.body_size = 0
        self.truncated = False
        self.head_done = False
        self.done = False
        self.keep_alive = True
        self.status = 0
        self.reason = ""
        self.version = ""
        self.headers: dict[str, str] = {}

    @property
    def pending(self) -> bool:
        """Whether decoded bytes wait to be taken with ``feed(b"")`` (no new input needed)."""
        if self.done:
            return False
        if self._framed:
            return True  # at least the end of the message is still to be handed out
        return any(d.more for d in self._decoders)

    # ------------------------------------------------------------------ head

    def _parse_head(self) -> bool:
        """Parse a complete head from ``_buf`` if there is one; skips 1xx answers."""
        while True:
            buf = self._buf
            end = buf.find(b"\r\n\r\n")
            # tolerate bare-LF heads, as browsers do; the first terminator wins (the body of a
            # bare-LF head may hold a CRLF CRLF)
            end_lf = buf.find(b"\n\n", 0, end) if end >= 0 else buf.find(b"\n\n")
            if end_lf >= 0:
                head, rest = buf[:end_lf], buf[end_lf + 2 :]
            elif end < 0:
                if len(buf) > MAX_HEAD_SIZE:
                    raise ProtocolError(f"the response head is larger than {MAX_HEAD_SIZE} bytes")
                if buf and not b"HTTP/".startswith(buf[:5]) and not buf.startswith(b"HTTP/"):
                    raise ProtocolError(f"not an HTTP response: {buf[:40]!r}")
                return False
            else:
                head, rest = buf[:end], buf[end + 4 :]
            if len(head) > MAX_HEAD_SIZE:
                raise ProtocolError(f"the response head is larger than {MAX_HEAD_SIZE} bytes")
            self._buf = rest
            status = self._parse_head_text(head)
            if 100 <= status < 200 and status != 101:
                continue  # informational: the real answer follows
            return True

    def _parse_head_text(self, head: bytes) -> int:
        text = head.decode("latin-1")
        lines = text.split("\r\n") if "\r\n" in text else text.split("\n")
        status_line = lines[0]
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise ProtocolError(f"malformed status line: {status_line[:100]!r}")
        code = parts[1]
        if len(code) != 3 or not (code.isascii() and code.isdigit()):  # not '2²³'
            raise ProtocolError(f"malformed status code in {status_line[:100]!r}")
        status = int(code)
        if status < 100:
            raise ProtocolError(f"malformed status code in {status_line[:100]!r}")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if not line:
                continue
            if line[0] in " \t":
                raise ProtocolError("obsolete header line folding is not supported")
            name, sep, value = line.partition(":")
            if not sep or not name or " " in name or "\t" in name or "\r" in name:
                raise ProtocolError(f"malformed header line: {line[:100]!r}")
            name = name.lower()
            # RFC 9112 2.2: a bare CR is replaced by SP (never kept: it would reach logs)
            value = value.strip(" \t").replace("\r", " ")
            old = headers.get(name)
            headers[name] = value if old is None else old + ", " + value
        self.version = parts[0]
        self.status = status
        self.reason = parts[2] if len(parts) > 2 else ""
        self.headers = headers
        return status

    def _setup_body(self) -> None:
        headers = self.headers
        status = self.status
        conn = headers.get("connection", "").lower()
        if self.version == "HTTP/1.0":
            self.keep_alive = "keep-alive" in conn
        else:
            self.keep_alive = "close" not in conn
        if (
            self._no_body
            or status in (204, 304)
            or 100 <= status < 200
            or (self._connect and 200 <= status < 300)
        ):
            self._mode = _NONE
            return
        te = headers.get("transfer-encoding")
        decoders: list[_Decoder] = []
        if te is not None:
            raw = [c.strip().lower() for c in te.split(",")]
            if raw[-1] != "chunked":
                self._mode = _CLOSE
                self.keep_alive = False
            else:
                self._mode = _CHUNKED
            if "chunked" in raw[:-1]:
                raise ProtocolError(f"chunked applied more than once: {te!r}")
            for coding in _codings(te, transfer=True):
                if coding not in _DECODABLE:
                    raise ProtocolError(f"unsupported transfer coding {coding!r}")
                decoders.append(_Decoder(coding))
            if "content-length" in headers:
                self.keep_alive = False  # both framings: do not trust the connection again
        else:
            cl = headers.get("content-length")
            if cl is not None:
                values = {v.strip() for v in cl.split(",")}
                if len(values) != 1:
                    raise ProtocolError(f"conflicting Content-Length values: {cl!r}")
                value = values.pop()
                if not (value.isascii() and value.isdigit()):  # '²'.isdigit() is True
                    raise ProtocolError(f"malformed Content-Length: {cl!r}")
                self._left = int(value)
                self._mode = _LENGTH
            else:
                self._mode = _CLOSE
                self.keep_alive = False
        # transfer codings wrap the content codings: undo them first, then the content
        # codings, each list from the last applied to the first
        decoders.reverse()
        content = _codings(headers.get("content-encoding", ""), transfer=False)
        if content and all(c in _DECODABLE for c in content):
            decoders.extend(_Decoder(c) for c in reversed(content))
        elif len(content) > 1 and any(c in _DECODABLE for c in content):
            raise ProtocolError(f"unsupported content coding in {content!r}")
        # one unknown content coding (``br``, never asked for) is handed over as it is
        self._decoders = decoders

    # ------------------------------------------------------------------ body

    def feed(self, data: bytes) -> bytes:
        """Consume received bytes; return the decoded body bytes among them (one step)."""
        if self.done:
            if data:
                self.keep_alive = False  # bytes nobody asked for: never reuse
            return b""
        if not self.head_done:
            self._buf = self._buf + data if self._buf else data
            if not self._parse_head():
                return b""
            self.head_done = True
            self._setup_body()
            data, self._buf = self._buf, b""
            if self._mode == _NONE:
                self.done = self._framed = True
                if data:
                    self.keep_alive = False
                return b""
            if not data:
                if self._mode == _LENGTH and self._left == 0:
                    self._framed = True
                    return self._out(b"")
                return b""
        if self._framed:
            if data:
                self.keep_alive = False
            return self._out(b"")
        mode = self._mode
        if mode == _LENGTH:
            left = self._left
            n = len(data)
            if n >= left:
                if n > left:
                    self.keep_alive = False
                    data = data[:left]
                self._left = 0
                self._framed = True
            else:
                self._left = left - n
            out = data
        elif mode == _CHUNKED:
            out = self._feed_chunked(data) if data else b""
        else:
            out = data
        return self._out(out)

    def _out(self, raw: bytes) -> bytes:
        """Decode ``raw`` (one step at most), count it, and mark the end of the message."""
        decoders = self._decoders
        if decoders:
            decoders[0].feed(raw)
            out = self._pull(len(decoders) - 1)
            if self._framed and not any(d.more for d in decoders):
                out += self._finish_decoders()
        else:
            out = raw
        if out:
            size = self.body_size + len(out)
            cap = self.max_error_body if self.status >= 400 else None
            if cap is not None and size >= cap:
                out = out[: max(0, cap - self.body_size)]
                size = cap
                self.truncated = True
                self.keep_alive = False
                self._framed = True
                self.done = True
                self.body_size = size
                return out
            if self.max_body is not None and size > self.max_body:
                raise BodyTooLargeError(f"the answer is larger than {self.max_body} bytes")
            self.body_size = size
        if self._framed and not (decoders and any(d.more for d in decoders)):
            self.done = True
        return out

    def _pull(self, index: int) -> bytes:
        """At most one step of output of decoder ``index``, fed from the ones before it.

        Input may wait in any decoder before it, not only the one next to it (an empty
        middle decoder does not mean the first one is drained), so it pulls while any of them
        has more; each pull consumes input or raises, so this ends.
        """
        decoders = self._decoders
        decoder = decoders[index]
        while True:
            out = decoder.read(MAX_DECODE_STEP)
            if out or index == 0 or not any(d.more for d in decoders[:index]):
                return out
            decoder.feed(self._pull(index - 1))

    def _finish_decoders(self) -> bytes:
        """The input ended: flush each decoder into the next, in order."""
        out = b""
        for decoder in self._decoders:
            if out:
                decoder.feed(out)
                out = decoder.read(MAX_DECODE_STEP)
                if decoder.more:
                    return out  # rare: the flushed bytes expand; the next feed goes on
            out += decoder.finish()
        return out

    def _feed_chunked(self, data: bytes) -> bytes:
        buf = self._buf + data if self._buf else data
        self._buf = b""
        pos = 0
        end = len(buf)
        out: list[bytes] = []
        size_match = _CHUNK_SIZE.match
        state = self._chunk_state
        left = self._chunk_left
        while pos < end:
            if state == _C_DATA:
                take = min(left, end - pos)
                out.append(buf[pos : pos + take])
                pos += take
                left -= take
                if left == 0:
                    state = _C_CRLF
            elif state == _C_CRLF:
                if end - pos < 2:
                    if buf[pos : pos + 1] not in (b"\r", b"\n"):
                        raise ProtocolError("missing CRLF after chunk data")
                    if buf[pos : pos + 1] == b"\n":
                        pos += 1
                        state = _C_SIZE
                        continue
                    break
                if buf[pos : pos + 2] == b"\r\n":
                    pos += 2
                elif buf[pos : pos + 1] == b"\n":
                    pos += 1
                else:
                    raise ProtocolError("missing CRLF after chunk data")
                state = _C_SIZE
            elif state == _C_SIZE:
                match = size_match(buf, pos)
                if match is not None:  # fast path: "<hex>[;ext]\r\n"
                    left = int(match.group(1), 16)
                    pos = match.end()
                    if not left:
                        state = _C_TRAILER
                        continue
                    stop = pos + left
                    if stop + 2 <= end and buf.startswith(b"\r\n", stop):
                        out.append(buf[pos:stop])  # the whole chunk is here
                        pos = stop + 2
                        left = 0
                        continue
                    state = _C_DATA
                    continue
                nl = buf.find(b"\n", pos)
                if nl < 0:
                    if end - pos > _MAX_CHUNK_LINE:
                        raise ProtocolError("chunk-size line too long")
                    break
                line = buf[pos:nl]
                pos = nl + 1
                semi = line.find(b";")
                if semi >= 0:
                    line = line[:semi]
                line = line.strip(b" \t\r")
                try:
                    if _HEX.fullmatch(line) is None:  # RFC 9112: 1*HEXDIG, no "1_3f"
                        raise ValueError
                    left = int(line, 16)
                except ValueError:
                    raise ProtocolError(f"malformed chunk size: {line[:40]!r}") from None
                state = _C_DATA if left else _C_TRAILER
            else:  # trailers: lines until an empty one
                nl = buf.find(b"\n", pos)
                if nl < 0:
                    if end - pos > MAX_HEAD_SIZE:
                        raise ProtocolError("chunked trailers too large")
                    break
                line = buf[pos:nl]
                pos = nl + 1
                if line in (b"", b"\r"):
                    self._framed = True
                    if pos < end:
                        self.keep_alive = False
                    pos = end
                    break
        if pos < end and not self._framed:
            self._buf = buf[pos:]
        self._chunk_state = state
        self._chunk_left = left
        if len(out) == 1:
            return out[0]
        return b"".join(out)

    def feed_eof(self) -> bytes:
        """The connection closed: the rest of a read-until-close body (a step), or an error."""
        if self.done:
            return b""
        self.keep_alive = False
        if self._framed:
            return self._out(b"")
        if not self.head_done:
            if self._buf:
                raise ProtocolError("the connection closed in the middle of the response head")
            raise IncompleteBodyError("the connection closed before a response arrived")
        if self._mode == _CLOSE:
            self._framed = True
            return self._out(b"")
        if self._mode == _LENGTH:
            raise IncompleteBodyError(
                f"the connection closed with {self._left} bytes of the body missing"
            )
        raise IncompleteBodyError("the connection closed inside the chunked body")


_EVENT_ENDS = (b"\n\n", b"\r\r", b"\n\r\n", b"\r\n\r")


def ends_event(before: bytes, data: bytes) -> bool:
    """Whether ``data`` (following ``before``, its last bytes) holds the blank line that ends an
    SSE event or comment block: the clock of a stream's idle timeout is reset only there, so
    a byte trickle cannot keep a stream alive."""
    text = before[-3:] + data[:3] if len(data) > 3 else before[-3:] + data
    if any(end in text for end in _EVENT_ENDS):
        return True
    return len(data) > 3 and any(end in data for end in _EVENT_ENDS)


def is_event_stream(headers: dict[str, str]) -> bool:
    """Whether an answer is ``text/event-stream``."""
    return headers.get("content-type", "").split(";")[0].strip().lower() == "text/event-stream"


def timeout_error(phase: str, url: str, timeout: Timeout) -> APITimeoutError:
    """The timeout error of a phase: ``head``, ``read``, ``idle`` or ``stream``."""
    if phase == "stream":
        return APITimeoutError(
            f"the stream ran longer than stream_timeout={timeout.stream} s ({url})",
            url=url,
            phase="stream",
        )
    if phase == "idle":
        return APITimeoutError(f"the stream went silent ({url})", url=url, phase="idle")
    if phase == "head":
        return APITimeoutError(
            f"no response head within {timeout.read} s ({url})", url=url, phase="read"
        )
    return APITimeoutError(f"reading the answer timed out ({url})", url=url, phase="read")
