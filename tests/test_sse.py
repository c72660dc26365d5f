"""Tests for the incremental server-sent events decoder in ``aleph_alpha_client._sse``."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aleph_alpha_client._exceptions import (
    EventTooLargeError,
    InvalidArgumentError,
    InvalidArgumentTypeError,
    StreamError,
)
from aleph_alpha_client._sse import DEFAULT_MAX_EVENT_SIZE, ServerSentEvent, SSEDecoder

E = ServerSentEvent


def decode(chunks: Iterable[bytes], **kwargs: int) -> tuple[list[ServerSentEvent], bool]:
    """Feed every chunk, flush, and return (events, truncated)."""
    decoder = SSEDecoder(**kwargs)
    events: list[ServerSentEvent] = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    events.extend(decoder.flush())
    return events, decoder.truncated


def events_of(body: bytes, **kwargs: int) -> list[ServerSentEvent]:
    return decode([body], **kwargs)[0]


def split_at(body: bytes, cuts: Iterable[int]) -> list[bytes]:
    points = sorted({min(max(c, 0), len(body)) for c in cuts})
    chunks, start = [], 0
    for p in points:
        chunks.append(body[start:p])
        start = p
    chunks.append(body[start:])
    return chunks


def bytewise(body: bytes) -> list[bytes]:
    return [body[i : i + 1] for i in range(len(body))]


# ---------------------------------------------------------------------------- ServerSentEvent


def test_event_defaults_eq_repr_json() -> None:
    ev = E(data='{"a": [1, 2]}')
    assert (ev.event, ev.data, ev.id, ev.retry) == ("message", '{"a": [1, 2]}', None, None)
    assert ev.json() == {"a": [1, 2]}
    assert ev == E("message", '{"a": [1, 2]}', None, None)
    assert ev != E("other", '{"a": [1, 2]}')
    assert ev != E(data='{"a": [1, 2]}', id="1")
    assert ev != E(data='{"a": [1, 2]}', retry=1)
    assert ev != E(data="{}")
    assert ev != object()
    assert (
        repr(ev) == "ServerSentEvent(event='message', data='{\"a\": [1, 2]}', id=None, retry=None)"
    )
    big = E(data="x" * 10_000)
    assert len(repr(big)) < 400 and "10000 chars" in repr(big)
    with pytest.raises(AttributeError):
        ev.other = 1  # type: ignore[attr-defined]
    with pytest.raises(json.JSONDecodeError):
        E(data="[DONE]").json()


def test_decoder_rejects_bad_max_event_size() -> None:
    with pytest.raises(InvalidArgumentError, match="max_event_size"):
        SSEDecoder(0)
    with pytest.raises(InvalidArgumentTypeError, match="max_event_size"):
        SSEDecoder("10")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentTypeError, match="max_event_size"):
        SSEDecoder(True)
    assert DEFAULT_MAX_EVENT_SIZE == 16 * 1024 * 1024


# ---------------------------------------------------------------------------- line endings


@pytest.mark.parametrize("nl", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
def test_each_line_ending(nl: bytes) -> None:
    body = nl.join([b"event: a", b"data: 1", b"data: 2", b"", b"data: 3", b"", b""])
    assert events_of(body) == [E("a", "1\n2"), E("message", "3")]


def test_mixed_line_endings() -> None:
    body = b"data: 1\rdata: 2\r\ndata: 3\n\r\ndata: 4\r\rdata: 5\n\n"
    assert events_of(body) == [E(data="1\n2\n3"), E(data="4"), E(data="5")]


def test_cr_and_lf_split_across_feeds_are_one_line_ending() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\ndata: b\r") == []  # if this LF were a blank line, "a" would go out
    assert decoder.feed(b"") == []  # an empty chunk keeps the pending CR
    assert decoder.feed(b"\n") == []
    assert decoder.feed(b"\r") == [E(data="a\nb")]  # the blank line
    assert decoder.feed(b"\n") == []  # ends that blank line, not another one
    assert decoder.feed(b"\n") == []  # a real blank line, but no data
    assert decoder.flush() == [] and not decoder.truncated


def test_cr_at_chunk_end_then_other_bytes() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\r") == [E(data="a")]  # CR CR: the second one is a blank line
    assert decoder.feed(b"data: b\r") == []
    assert decoder.feed(b"data: c\r\r") == [E(data="b\nc")]


# ---------------------------------------------------------------------------- fields


def test_comments_are_ignored() -> None:
    body = b": hello\n:\ndata: x\n: between\ndata: y\n\n: trailing\n"
    assert decode([body]) == ([E(data="x\ny")], False)


def test_event_id_retry_fields() -> None:
    body = b"event: delta\nid: 7\nretry: 1500\ndata: {}\n\n"
    decoder = SSEDecoder()
    assert decoder.feed(body) == [E("delta", "{}", "7", 1500)]
    assert decoder.last_event_id == "7"
    assert decoder.reconnection_time == 1500


@pytest.mark.parametrize("value", [b"1a", b"-1", b"1.5", b" 1", b"", b"\xd9\xa1", b"1 "])
def test_retry_without_only_ascii_digits_is_ignored(value: bytes) -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"retry: " + value + b"\ndata: x\n\n") == [E(data="x")]
    assert decoder.reconnection_time is None


def test_retry_is_per_event_and_reconnection_time_persists() -> None:
    body = b"retry: 10\ndata: a\n\ndata: b\n\nretry: 20\n\ndata: c\n\n"
    decoder = SSEDecoder()
    assert decoder.feed(body) == [E(data="a", retry=10), E(data="b"), E(data="c")]
    assert decoder.reconnection_time == 20  # from an event without data, not dispatched


def test_retry_with_more_digits_than_int_converts_is_ignored() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"retry: " + b"9" * 5000 + b"\ndata: x\n\n") == [E(data="x")]
    assert decoder.feed(b"retry:007\ndata: y\n\n") == [E(data="y", retry=7)]


def test_id_with_nul_is_ignored() -> None:
    body = b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n"
    decoder = SSEDecoder()
    assert decoder.feed(body) == [E(data="a", id="1"), E(data="b", id="1")]
    assert decoder.last_event_id == "1"


def test_last_event_id_persists_and_can_be_cleared() -> None:
    decoder = SSEDecoder()
    assert decoder.last_event_id == ""
    assert decoder.feed(b"data: a\n\n") == [E(data="a", id=None)]
    assert decoder.feed(b"id: 5\ndata: b\n\n") == [E(data="b", id="5")]
    assert decoder.feed(b"data: c\n\n") == [E(data="c", id="5")]
    assert decoder.last_event_id == "5"
    # An id in an event without data still sets the last event id (at its blank line).
    assert decoder.feed(b"id: 6\n\n") == []
    assert decoder.last_event_id == "6"
    assert decoder.feed(b"data: d\n\n") == [E(data="d", id="6")]
    # An empty id field resets it to the empty string; "id" without colon too.
    assert decoder.feed(b"id:\ndata: e\n\n") == [E(data="e", id="")]
    assert decoder.last_event_id == ""
    assert decoder.feed(b"id: 9\ndata: f\n\nid\ndata: g\n\n") == [
        E(data="f", id="9"),
        E(data="g", id=""),
    ]


def test_last_event_id_survives_flush_for_reconnects() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"id: abc\ndata: 1\n\n")
    assert decoder.flush() == []
    assert decoder.last_event_id == "abc"
    assert decoder.feed(b"data: 2\n\n") == [E(data="2", id="abc")]


def test_multi_line_data() -> None:
    assert events_of(b"data: a\ndata: b\ndata:\ndata: c\n\n") == [E(data="a\nb\n\nc")]


def test_data_without_colon_and_without_space() -> None:
    assert events_of(b"data\n\n") == [E(data="")]
    assert events_of(b"data\ndata\n\n") == [E(data="\n")]
    assert events_of(b"data:x\n\n") == [E(data="x")]
    assert events_of(b"data:  x\n\n") == [E(data=" x")]  # only one space is removed
    assert events_of(b"data:x:y: z\n\n") == [E(data="x:y: z")]
    assert events_of(b"data: \n\n") == [E(data="")]


def test_unknown_and_wrong_case_fields_are_ignored() -> None:
    body = b"Data: no\nDATA: no\nfoo: bar\nfoo\n data: no\ndata: yes\n\n"
    assert events_of(body) == [E(data="yes")]


def test_event_type() -> None:
    body = b"event: a\ndata: 1\n\ndata: 2\n\nevent:\ndata: 3\n\nevent: x\nevent: y\ndata: 4\n\n"
    assert events_of(body) == [E("a", "1"), E("message", "2"), E("message", "3"), E("y", "4")]


def test_blank_line_without_data_does_not_dispatch_and_resets_event_type() -> None:
    body = b"\n\n\nevent: ping\n\ndata: x\n\nevent: a\nretry: 5\n: c\n\ndata: y\n\n"
    assert events_of(body) == [E("message", "x"), E("message", "y")]


def test_bom_is_stripped_once_at_start_only() -> None:
    bom = b"\xef\xbb\xbf"
    assert events_of(bom + b"data: x\n\n") == [E(data="x")]
    # A second BOM makes the next field name unknown.
    assert events_of(bom + bom + b"data: x\n\ndata: y\n\n") == [E(data="y")]
    assert events_of(b"data: x\n\n" + bom + b"data: y\n\n") == [E(data="x")]
    # Data may start with U+FEFF.
    assert events_of(bom + b"data: " + bom + b"x\n\n") == [E(data="\ufeffx")]
    # Split anywhere, even a BOM.
    body = bom + b"data: x\n\n"
    for cut in range(len(body) + 1):
        assert decode(split_at(body, [cut])) == ([E(data="x")], False)
    assert decode(bytewise(body)) == ([E(data="x")], False)
    # A stream starting like a BOM but not one keeps its bytes.
    assert decode([b"\xef", b"\xbbdata: x\n\n"])[0] == []
    assert decode([b"\xef"]) == ([], True)


def test_invalid_utf8_is_replaced() -> None:
    assert events_of(b"data: a\xffb\xe2\x82\n\n") == [E(data="a\ufffdb\ufffd")]
    assert events_of(b"data: \xe2\x82\ndata: x\n\n") == [E(data="\ufffd\nx")]
    assert events_of(b"event: \xff\ndata: x\n\n") == [E("\ufffd", "x")]


def test_feed_accepts_bytes_like() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(bytearray(b"data: a\n")) == []  # type: ignore[arg-type]
    assert decoder.feed(memoryview(b"\n")) == [E(data="a")]  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- chunking


@pytest.mark.parametrize("text", ["😀", "äöüß", "a€b", "𝄞 ünïcödé 😀 done"])
def test_multibyte_utf8_split_at_every_byte(text: str) -> None:
    body = f"event: {text}\ndata: {text}\ndata: {text}\n\n".encode()
    expected = [E(text, f"{text}\n{text}")]
    for cut in range(len(body) + 1):
        assert decode(split_at(body, [cut])) == (expected, False), cut
    assert decode(bytewise(body)) == (expected, False)


CHAT_CHUNKS = [
    {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]},
    {"choices": [{"index": 0, "delta": {"content": "Grüße, 世界 😀"}}]},
    {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": {"total": 9}},
]
CHAT_BODY = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in CHAT_CHUNKS)
CHAT_BODY = b": keep-alive\r\n" + CHAT_BODY.replace(b"\n\n", b"\r\n\r\n", 1)
CHAT_BODY += b"data: [DONE]\n\n"


def test_chat_stream_whole() -> None:
    events, truncated = decode([CHAT_BODY])
    assert [e.json() for e in events[:3]] == CHAT_CHUNKS
    assert events[3] == E(data="[DONE]")
    assert len(events) == 4 and not truncated


def test_chat_stream_split_at_every_offset_and_bytewise() -> None:
    expected = decode([CHAT_BODY])
    assert len(expected[0]) == 4
    for cut in range(len(CHAT_BODY) + 1):
        assert decode(split_at(CHAT_BODY, [cut])) == expected, cut
    assert decode(bytewise(CHAT_BODY)) == expected
    with_crs = CHAT_BODY.replace(b"\n", b"\r\n").replace(b"\r\r", b"\r")
    assert decode(bytewise(with_crs)) == expected
    for cut in range(len(with_crs) + 1):
        assert decode(split_at(with_crs, [cut])) == expected, cut


def test_events_are_returned_as_soon_as_complete() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: 1\n\ndata: 2\n") == [E(data="1")]
    assert decoder.feed(b"\ndata: 3") == [E(data="2")]
    assert decoder.feed(b"\n\n") == [E(data="3")]


# ---------------------------------------------------------------------------- size limits


def test_one_mib_event() -> None:
    payload = ("0123456789abcdé" * 70_000)[: 1024 * 1024]
    body = b"data: " + payload.encode() + b"\n\n"
    assert len(body) > 1024 * 1024
    assert events_of(body) == [E(data=payload)]
    chunks = [body[i : i + 4096] for i in range(0, len(body), 4096)]
    assert decode(chunks) == ([E(data=payload)], False)
    lines = [payload[i : i + 1000] for i in range(0, len(payload), 1000)]
    multi = b"".join(b"data:" + line.encode() + b"\r\n" for line in lines) + b"\r\n"
    chunks = [multi[i : i + 777] for i in range(0, len(multi), 777)]
    assert decode(chunks) == ([E(data="\n".join(lines))], False)


def test_event_exactly_at_the_limit_is_accepted() -> None:
    assert events_of(b"data: " + b"x" * 100 + b"\n\n", max_event_size=100) == [E(data="x" * 100)]
    assert events_of(b"data:" + b"x" * 100 + b"\n\n", max_event_size=100) == [E(data="x" * 100)]
    two = b"data: " + b"x" * 50 + b"\ndata: " + b"y" * 49 + b"\n\n"
    assert events_of(two, max_event_size=100) == [E(data="x" * 50 + "\n" + "y" * 49)]


@pytest.mark.parametrize(
    "body",
    [
        b"data: " + b"x" * 101 + b"\n\n",
        b"data:" + b"x" * 101 + b"\n\n",
        b"data: " + b"x" * 50 + b"\ndata: " + b"y" * 50 + b"\n\n",
        b"data\n" * 102 + b"\n",
    ],
    ids=["one-line", "no-space", "two-lines", "many-empty-lines"],
)
def test_over_limit_event_raises(body: bytes) -> None:
    for chunks in ([body], bytewise(body)):
        decoder = SSEDecoder(max_event_size=100)
        with pytest.raises(EventTooLargeError, match=r"100 bytes.*max_event_size"):
            for chunk in chunks:
                decoder.feed(chunk)


def test_over_limit_unterminated_line_raises_without_buffering_it_all() -> None:
    decoder = SSEDecoder(max_event_size=1000)
    with pytest.raises(EventTooLargeError, match=r"1000 bytes.*max_event_size") as info:
        for _ in range(10_000):
            decoder.feed(b"data: " + b"z" * 100)
    assert isinstance(info.value, StreamError)
    assert "unterminated line" in str(info.value)
    # The remainder of one big chunk counts as well.
    with pytest.raises(EventTooLargeError, match="unterminated line"):
        SSEDecoder(max_event_size=10).feed(b"data: a\n\n: " + b"c" * 20)


def test_over_limit_lines_of_any_field_raise() -> None:
    for field in (b": ", b"event: ", b"id: ", b"foo: "):
        with pytest.raises(EventTooLargeError, match="a line"):
            SSEDecoder(max_event_size=10).feed(field + b"c" * 20 + b"\n")


# ---------------------------------------------------------------------------- flush


def test_flush_after_clean_end() -> None:
    decoder = SSEDecoder()
    assert decoder.truncated is False
    assert decoder.feed(b"data: a\n\n: bye\n") == [E(data="a")]
    assert decoder.flush() == []
    assert decoder.truncated is False
    assert decode([]) == ([], False)


def test_flush_discards_unterminated_line_and_its_event() -> None:
    assert decode([b"data: a\n\ndata: b"]) == ([E(data="a")], True)
    assert decode([b"data: a\n\ndata: b\ndata: c"]) == ([E(data="a")], True)
    assert decode([b"data: a\n\n: comment without end"]) == ([E(data="a")], True)


def test_flush_dispatches_event_without_blank_line() -> None:
    assert decode([b"event: e\nid: 1\ndata: b\n"]) == ([E("e", "b", "1")], True)
    assert decode([b"data: b\r"]) == ([E(data="b")], True)
    assert decode([b"data: b\r\n"]) == ([E(data="b")], True)
    decoder = SSEDecoder()
    decoder.feed(b"data: a\n\nid: 2\n")
    assert decoder.flush() == []
    assert decoder.truncated is True  # a field line after the last blank line
    assert decoder.last_event_id == "2"


def test_flush_resets_for_a_new_stream() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"event: x\ndata: partial")
    assert decoder.flush() == [] and decoder.truncated
    assert decoder.feed(b"\xef\xbb\xbfdata: fresh\n\n") == [E(data="fresh")]
    assert decoder.flush() == [] and not decoder.truncated


# ---------------------------------------------------------------------------- properties


_LINE_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=12)
_ID_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\r\n\x00"), max_size=8)


_Draw = Callable[[st.SearchStrategy[str]], str]


@dataclass
class _Spec:
    event: str | None
    data: list[str]
    id: str | None
    retry: int | None
    comment: str | None


_SPECS = st.builds(
    _Spec,
    event=st.none() | _LINE_TEXT,
    data=st.lists(_LINE_TEXT, min_size=1, max_size=4),
    id=st.none() | _ID_TEXT,
    retry=st.none() | st.integers(0, 10**12),
    comment=st.none() | _LINE_TEXT,
)


def _field(draw: _Draw, name: str, value: str) -> str:
    # Without a space after the colon, a value that starts with a space would lose it.
    space = " " if value.startswith(" ") else draw(st.sampled_from(["", " "]))
    return f"{name}:{space}{value}"


def _encode(specs: Sequence[_Spec], draw: _Draw) -> bytes:
    lines: list[str] = []
    for spec in specs:
        if spec.comment is not None:
            lines.append(":" + spec.comment)
        if spec.event is not None:
            lines.append("event: " + spec.event)
        if spec.id is not None:
            lines.append(_field(draw, "id", spec.id))
        if spec.retry is not None:
            lines.append(f"retry: {spec.retry}")
        for d in spec.data:
            lines.append(_field(draw, "data", d))
        lines.append("")
    out: list[str] = []
    previous = ""
    for line in lines:
        ending = draw(st.sampled_from(["\n", "\r\n", "\r"]))
        if previous == "\r" and line == "" and ending == "\n":
            ending = "\r\n"  # CR then a lone LF would be one line ending, not two
        out.append(line + ending)
        previous = ending
    return "".join(out).encode()


def _expected(specs: Sequence[_Spec]) -> list[ServerSentEvent]:
    events, last_id = [], None
    for spec in specs:
        if spec.id is not None:
            last_id = spec.id
        events.append(E(spec.event or "message", "\n".join(spec.data), last_id, spec.retry))
    return events


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs=st.lists(_SPECS, max_size=6), data=st.data())
def test_property_round_trip(specs: list[_Spec], data: st.DataObject) -> None:
    body = _encode(specs, data.draw)
    cuts = data.draw(st.lists(st.integers(0, len(body)), max_size=8))
    expected = _expected(specs)
    assert decode(split_at(body, cuts)) == (expected, False)
    assert decode([body]) == (expected, False)


def _outcome(chunks: Iterable[bytes], limit: int) -> tuple[str, list[ServerSentEvent], bool]:
    decoder = SSEDecoder(max_event_size=limit)
    events: list[ServerSentEvent] = []
    try:
        for chunk in chunks:
            events.extend(decoder.feed(chunk))
        events.extend(decoder.flush())
    except EventTooLargeError:
        return "too large", [], True
    for ev in events:
        assert isinstance(ev.event, str) and isinstance(ev.data, str)
        assert ev.id is None or isinstance(ev.id, str)
        assert ev.retry is None or (isinstance(ev.retry, int) and ev.retry >= 0)
        assert len(ev.data.encode()) <= limit * 3
    return "ok", events, decoder.truncated


_NOISE = st.lists(
    st.sampled_from([b"\n", b"\r", b"\r\n", b":", b" ", b"data", b"event", b"id", b"retry"])
    | st.sampled_from([b"\x00", b"\xef\xbb\xbf", b"\xff", b"\xe2\x82", b"12", b"x" * 9])
    | st.binary(max_size=6),
    max_size=40,
).map(b"".join)


@settings(max_examples=300, deadline=None)
@given(body=_NOISE | st.binary(max_size=200), data=st.data(), limit=st.integers(1, 40))
def test_property_arbitrary_bytes_never_crash_and_chunking_does_not_matter(
    body: bytes, data: st.DataObject, limit: int
) -> None:
    cuts = data.draw(st.lists(st.integers(0, len(body)), max_size=10))
    whole = _outcome([body], limit)
    assert _outcome(split_at(body, cuts), limit) == whole
    assert _outcome(bytewise(body), limit) == whole
