"""An incremental decoder for server-sent events (SSE): bytes in, events out, no I/O.

It follows the parsing rules of the WHATWG HTML standard, section "Server-sent events":

* A line ends with CRLF, LF or CR. A CR at the end of one chunk and an LF at the start of the
  next are one line ending. One UTF-8 byte order mark at the very start of the stream is
  dropped.
* A line starting with ``:`` is a comment. Otherwise the line is ``field:value``, where one
  space after the colon is dropped, or just ``field`` (value empty). The fields are ``event``,
  ``data``, ``id`` (ignored if it contains NUL) and ``retry`` (ignored unless ASCII digits);
  other fields are ignored.
* A blank line dispatches the event being built, unless it has no ``data`` field at all, in
  which case the event is dropped (its event type and retry are reset, its id stays).

Design, for speed and bounded memory:

* The decoder works on bytes. Line endings are ASCII, and ASCII bytes never occur inside a
  multi-byte UTF-8 sequence, so splitting bytes at ``\\n`` and ``\\r`` never cuts a character,
  however the network chunked it. Values are decoded per event with ``errors="replace"``.
* A chunk is handled with a few C-level calls: ``in`` to look for line endings, one
  ``replace`` pair only if the chunk holds a CR, and one ``split(b"\\n")``. The Python loop then
  runs once per *line*, never once per byte, and the common line ``data: ...`` takes a short
  path.
* The bytes of an unterminated line are kept as a list of chunks and joined once, when the
  line ending arrives, so nothing is scanned or copied twice (no quadratic concatenation for
  events that span many chunks). Data lines of an event are kept as a list too and joined at
  dispatch.
* Memory is bounded by ``max_event_size``: a line longer than that (plus room for the
  ``data:`` field name), terminated or not, or an event whose data is longer than that raises
  :class:`~aleph_alpha_client._exceptions.EventTooLargeError`. The check does not depend on
  how the stream was chunked. After that error the decoder must not be fed again.
"""

from __future__ import annotations

import json
from typing import Any

from ._exceptions import EventTooLargeError
from ._validation import check_int

__all__ = ["DEFAULT_MAX_EVENT_SIZE", "SSEDecoder", "ServerSentEvent"]

#: The default limit for one line and for one event's data, in bytes (16 MiB).
DEFAULT_MAX_EVENT_SIZE = 16 * 1024 * 1024

_BOM = b"\xef\xbb\xbf"
_DATA_PREFIX = b"data: "
#: Room, beyond ``max_event_size``, that a line may take for its ``data: `` field name.
_FIELD_ROOM = len(_DATA_PREFIX)
_REPR_DATA = 200


class ServerSentEvent:
    """One dispatched server-sent event.

    ``event`` is the event type (``"message"`` when the event named none), ``data`` its data
    lines joined with ``"\\n"``, ``id`` the last event id seen in the stream so far (``None``
    if no ``id`` field was ever accepted), ``retry`` the value of a valid ``retry`` field in
    this event (else ``None``).
    """

    __slots__ = ("data", "event", "id", "retry")

    event: str
    data: str
    id: str | None
    retry: int | None

    def __init__(
        self,
        event: str = "message",
        data: str = "",
        id: str | None = None,
        retry: int | None = None,
    ) -> None:
        self.event = event
        self.data = data
        self.id = id
        self.retry = retry

    def json(self) -> Any:
        """The data parsed as JSON (``json.loads(self.data)``)."""
        return json.loads(self.data)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ServerSentEvent):
            return NotImplemented
        return (
            self.event == other.event
            and self.data == other.data
            and self.id == other.id
            and self.retry == other.retry
        )

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value

    def __repr__(self) -> str:
        data = self.data
        shown = (
            repr(data)
            if len(data) <= _REPR_DATA
            else f"{data[:_REPR_DATA]!r}...({len(data)} chars)"
        )
        return (
            f"ServerSentEvent(event={self.event!r}, data={shown}, "
            f"id={self.id!r}, retry={self.retry!r})"
        )


class SSEDecoder:
    """Turns the bytes of an ``text/event-stream`` body into :class:`ServerSentEvent` objects.

    Feed it the body in chunks of any size, split anywhere, with :meth:`feed`; call
    :meth:`flush` once at the end of the stream.

    ``max_event_size`` bounds memory: a line longer than that many bytes (plus room for the
    ``data: `` field name) or an event whose data is longer raises ``EventTooLargeError``.

    ``last_event_id`` is the spec's "last event ID string": updated at every blank line, kept
    across :meth:`flush` so that a reconnect can send it as ``Last-Event-ID``.
    ``reconnection_time`` is the last valid ``retry`` value seen anywhere in the stream (also
    from events that were not dispatched), or ``None``.
    """

    __slots__ = (
        "_bom_checked",
        "_data",
        "_data_size",
        "_dirty",
        "_event_type",
        "_id",
        "_line_limit",
        "_max",
        "_pending",
        "_pending_size",
        "_retry",
        "_skip_lf",
        "_truncated",
        "last_event_id",
        "reconnection_time",
    )

    def __init__(self, max_event_size: int = DEFAULT_MAX_EVENT_SIZE) -> None:
        check_int("max_event_size", max_event_size, minimum=1)
        self._max = max_event_size
        self._line_limit = max_event_size + _FIELD_ROOM
        self.last_event_id: str = ""
        self.reconnection_time: int | None = None
        self._id: str | None = None
        self._truncated = False
        self._reset()

    def _reset(self) -> None:
        # Everything but the last event id, which outlives a stream.
        self._bom_checked = False
        self._skip_lf = False
        self._pending: list[bytes] = []  # chunks of the unterminated line; no CR/LF in them
        self._pending_size = 0
        self._data: list[bytes] = []  # data values of the event being built
        self._data_size = 0  # sum of len(value) + 1 over _data
        self._event_type: str | None = None
        self._retry: int | None = None
        self._dirty = False  # a non-data field line since the last blank line

    @property
    def truncated(self) -> bool:
        """After :meth:`flush`: whether the stream ended inside a line or inside an event."""
        return self._truncated

    def _too_large(self, what: str) -> EventTooLargeError:
        return EventTooLargeError(
            f"server-sent event too large: {what} exceeds the limit of {self._max} bytes; "
            f"pass a larger max_event_size to accept it"
        )

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Decode the next piece of the stream and return the events it completed."""
        if type(chunk) is not bytes:
            chunk = bytes(chunk)
        if not chunk:
            return []
        if self._skip_lf:
            # The previous chunk ended in CR; an LF right after it belongs to that line end.
            self._skip_lf = False
            if chunk[0] == 10:
                chunk = chunk[1:]
                if not chunk:
                    return []
        if not self._bom_checked:
            head = b"".join(self._pending) + chunk if self._pending else chunk
            if len(head) < len(_BOM) and _BOM.startswith(head):
                self._pending = [head]  # maybe the start of a BOM: wait for more
                self._pending_size = len(head)
                return []
            self._bom_checked = True
            self._pending = []
            self._pending_size = 0
            chunk = head[len(_BOM) :] if head.startswith(_BOM) else head
            if not chunk:
                return []

        has_cr = b"\r" in chunk
        if not has_cr and b"\n" not in chunk:
            self._pending.append(chunk)
            self._pending_size += len(chunk)
            if self._pending_size > self._line_limit:
                raise self._too_large("an unterminated line")
            return []
        if self._pending:
            self._pending.append(chunk)
            buf = b"".join(self._pending)
            self._pending = []
            self._pending_size = 0
        else:
            buf = chunk
        if has_cr:
            if buf[-1] == 13:
                self._skip_lf = True
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = buf.split(b"\n")
        rest = lines.pop()
        if rest:
            if len(rest) > self._line_limit:
                raise self._too_large("an unterminated line")
            self._pending.append(rest)
            self._pending_size = len(rest)
        return self._lines(lines)

    def _lines(self, lines: list[bytes]) -> list[ServerSentEvent]:
        events: list[ServerSentEvent] = []
        append_event = events.append
        data = self._data
        size = self._data_size
        data_limit = self._max + 1  # size counts one "\n" per line, the event one less
        for line in lines:
            if not line:
                # Blank line: dispatch.
                last_id = self._id
                self.last_event_id = "" if last_id is None else last_id
                if data:
                    if len(data) == 1:
                        text = data[0].decode("utf-8", "replace")
                    else:
                        text = b"\n".join(data).decode("utf-8", "replace")
                    data = self._data = []
                    size = 0
                    append_event(
                        ServerSentEvent(self._event_type or "message", text, last_id, self._retry)
                    )
                self._event_type = None
                self._retry = None
                self._dirty = False
                continue
            if line[:6] == _DATA_PREFIX:
                size += len(line) - 5
                if size > data_limit:
                    raise self._too_large("the data of an event")
                data.append(line[6:])
                continue
            if len(line) > self._line_limit:  # also for comments: chunking must not matter
                raise self._too_large("a line")
            if line[0] == 58:  # ":" comment
                continue
            colon = line.find(b":")
            if colon < 0:
                name = line
                value = b""
            else:
                name = line[:colon]
                value = line[colon + 1 :]
                if value[:1] == b" ":
                    value = value[1:]
            if name == b"data":
                size += len(value) + 1
                if size > data_limit:
                    raise self._too_large("the data of an event")
                data.append(value)
            elif name == b"event":
                self._dirty = True
                self._event_type = value.decode("utf-8", "replace")
            elif name == b"id":
                self._dirty = True
                if b"\x00" not in value:
                    self._id = value.decode("utf-8", "replace")
            elif name == b"retry":
                self._dirty = True
                if value.isdigit():  # bytes.isdigit: ASCII digits only, False if empty
                    try:
                        retry = int(value)
                    except ValueError:  # more digits than int() converts
                        pass
                    else:
                        self._retry = retry
                        self.reconnection_time = retry
            # Any other field is ignored, as the standard says.
        self._data_size = size
        return events

    def flush(self) -> list[ServerSentEvent]:
        """End the stream; return the last event if the stream ended without its blank line.

        An unterminated final line is discarded (as the standard says), and with it the event
        it belonged to. An event whose lines were all terminated but whose closing blank line
        never came is dispatched anyway, as most clients do (the standard would drop it).
        Either way :attr:`truncated` becomes ``True``; it is ``False`` when the stream ended
        cleanly after a blank line (comments after it do not matter).

        The decoder is then ready for a new stream (a reconnect); ``last_event_id`` is kept.
        """
        events: list[ServerSentEvent] = []
        truncated = False
        if self._pending:  # an unterminated line (maybe just part of a BOM)
            truncated = True
        elif self._data or self._dirty:
            truncated = True
            events = self._lines([b""])
        self._truncated = truncated
        self._reset()
        return events
