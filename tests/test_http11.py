"""The sans-I/O HTTP/1.1 parser and serializer (_http11): framing, keep-alive, decoding, errors."""

from __future__ import annotations

import gzip
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aleph_alpha_client._exceptions import InvalidArgumentError
from aleph_alpha_client._http11 import (
    MAX_HEAD_SIZE,
    IncompleteBodyError,
    ProtocolError,
    ResponseParser,
    serialize_request,
)


def parse(data: bytes, method: str = "GET", eof: bool = False) -> tuple[ResponseParser, bytes]:
    parser = ResponseParser(method)
    body = parser.feed(data)
    if eof:
        body += parser.feed_eof()
    return parser, body


def parse_split(data: bytes, cuts: list[int], method: str = "GET") -> tuple[ResponseParser, bytes]:
    parser = ResponseParser(method)
    out = []
    start = 0
    for cut in [*sorted(set(cuts)), len(data)]:
        out.append(parser.feed(data[start:cut]))
        start = cut
    return parser, b"".join(out)


# ------------------------------------------------------------------ head


def test_status_headers_content_length() -> None:
    parser, body = parse(
        b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
        b"Content-Length: 2\r\nX-Request-Id:  abc \r\n\r\n{}"
    )
    assert (parser.status, parser.reason, parser.done, parser.keep_alive) == (
        201,
        "Created",
        True,
        True,
    )
    assert parser.headers == {
        "content-type": "application/json",
        "content-length": "2",
        "x-request-id": "abc",
    }
    assert body == b"{}"


def test_repeated_headers_joined() -> None:
    parser, _ = parse(b"HTTP/1.1 200 OK\r\nVary: a\r\nvary: b\r\nContent-Length: 0\r\n\r\n")
    assert parser.headers["vary"] == "a, b"


def test_status_line_without_reason() -> None:
    parser, _ = parse(b"HTTP/1.1 204\r\n\r\n")
    assert parser.status == 204 and parser.done


def test_informational_answers_are_skipped() -> None:
    parser, body = parse(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"
    )
    assert parser.status == 200 and body == b"abc" and "link" not in parser.headers


@pytest.mark.parametrize(
    ("raw", "method"),
    [
        (b"HTTP/1.1 204 No Content\r\n\r\n", "POST"),
        (b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", "GET"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", "HEAD"),
        (b"HTTP/1.1 200 Connection established\r\n\r\n", "CONNECT"),
    ],
)
def test_answers_without_body(raw: bytes, method: str) -> None:
    parser, body = parse(raw, method)
    assert parser.done and body == b"" and parser.keep_alive


@pytest.mark.parametrize(
    ("raw", "keep_alive"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", True),
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", False),
        (b"HTTP/1.1 200 OK\r\nConnection: Keep-Alive, Close\r\nContent-Length: 0\r\n\r\n", False),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", False),
        (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", True),
    ],
)
def test_keep_alive_decision(raw: bytes, keep_alive: bool) -> None:
    parser, _ = parse(raw)
    assert parser.done and parser.keep_alive is keep_alive


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1 abc OK\r\n\r\n",
        b"HTTP/2 200 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nBad Name: a\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n",
        b"SSH-2.0-OpenSSH\r\n\r\n",
    ],
)
def test_malformed_heads_raise(raw: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse(raw)


def test_garbage_is_rejected_before_the_head_ends() -> None:
    with pytest.raises(ProtocolError, match="not an HTTP response"):
        ResponseParser().feed(b"<html>")


def test_head_size_limit() -> None:
    parser = ResponseParser()
    parser.feed(b"HTTP/1.1 200 OK\r\n")
    with pytest.raises(ProtocolError, match="larger than"):
        for _ in range(MAX_HEAD_SIZE // 1000 + 2):
            parser.feed(b"X-Big: " + b"a" * 1000 + b"\r\n")


def test_same_content_length_twice_is_accepted() -> None:
    parser, body = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok")
    assert body == b"ok" and parser.done


# ------------------------------------------------------------------ bodies


def test_content_length_in_pieces() -> None:
    parser = ResponseParser()
    assert parser.feed(b"HTTP/1.1 200 OK\r\nContent-Len") == b""
    assert not parser.head_done
    assert parser.feed(b"gth: 5\r\n\r\nab") == b"ab"
    assert parser.head_done and not parser.done
    assert parser.feed(b"cde") == b"cde"
    assert parser.done and parser.keep_alive


def test_extra_bytes_after_the_body_forbid_reuse() -> None:
    parser, body = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA")
    assert body == b"ok" and parser.done and not parser.keep_alive


def test_chunked_with_extensions_and_trailers() -> None:
    raw = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;name=value\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n"
    )
    parser, body = parse(raw)
    assert body == b"hello 0123456789" and parser.done and parser.keep_alive


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=200), max_size=8), st.binary(max_size=120))
def test_chunked_any_split(cuts: list[int], payload: bytes) -> None:
    raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    for i in range(0, len(payload), 7):
        piece = payload[i : i + 7]
        raw += f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    raw += b"0\r\n\r\n"
    parser, body = parse_split(raw, [c for c in cuts if c < len(raw)])
    assert body == payload and parser.done and parser.keep_alive


@pytest.mark.parametrize(
    "body",
    [
        b"zz\r\nab\r\n0\r\n\r\n",
        b"-1\r\n",
        b"0x5\r\nhello\r\n",
        b"2\r\nabXY0\r\n\r\n",
    ],
)
def test_malformed_chunked(body: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body)


def test_read_until_close() -> None:
    parser = ResponseParser()
    assert parser.feed(b"HTTP/1.1 200 OK\r\n\r\npart1") == b"part1"
    assert not parser.done and not parser.keep_alive
    assert parser.feed(b"part2") == b"part2"
    assert parser.feed_eof() == b""
    assert parser.done


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
        b"",
    ],
)
def test_eof_inside_the_body_is_incomplete(raw: bytes) -> None:
    parser = ResponseParser()
    parser.feed(raw)
    with pytest.raises(IncompleteBodyError):
        parser.feed_eof()


def test_eof_inside_the_head_is_a_protocol_error() -> None:
    parser = ResponseParser()
    parser.feed(b"HTTP/1.1 200 OK\r\nContent-")
    with pytest.raises(ProtocolError, match="head"):
        parser.feed_eof()


# ------------------------------------------------------------------ decoding


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda data: zlib.compress(data)[2:-4]),  # raw deflate, as some servers send
    ],
)
@pytest.mark.parametrize("chunked", [False, True])
def test_decoding_in_pieces(encoding: str, compress: object, chunked: bool) -> None:
    plain = b"data: " + b"x" * 5000 + b"\n\n" + bytes(range(256)) * 20
    packed = compress(plain)  # type: ignore[operator]
    if chunked:
        framed = b"".join(
            f"{len(packed[i : i + 100]):x}\r\n".encode() + packed[i : i + 100] + b"\r\n"
            for i in range(0, len(packed), 100)
        )
        raw = (
            (
                f"HTTP/1.1 200 OK\r\nContent-Encoding: {encoding}\r\n"
                "Transfer-Encoding: chunked\r\n\r\n"
            ).encode()
            + framed
            + b"0\r\n\r\n"
        )
    else:
        raw = (
            f"HTTP/1.1 200 OK\r\nContent-Encoding: {encoding}\r\n"
            f"Content-Length: {len(packed)}\r\n\r\n"
        ).encode() + packed
    parser, body = parse_split(raw, list(range(0, len(raw), 37)))
    assert body == plain and parser.done


def test_corrupt_gzip_raises() -> None:
    with pytest.raises(ProtocolError, match="decompress"):
        parse(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 5\r\n\r\nnotgz")


def test_unknown_encoding_is_passed_through() -> None:
    _, body = parse(b"HTTP/1.1 200 OK\r\nContent-Encoding: br\r\nContent-Length: 3\r\n\r\nabc")
    assert body == b"abc"


# ------------------------------------------------------------------ requests


def test_serialize_request() -> None:
    raw = serialize_request(
        "POST", "/chat?x=1", "api.example:8443", {"Authorization": "Bearer t"}, b"{}"
    )
    assert raw == (
        b"POST /chat?x=1 HTTP/1.1\r\nHost: api.example:8443\r\nAuthorization: Bearer t\r\n"
        b"Content-Length: 2\r\n\r\n{}"
    )


def test_serialize_get_has_no_content_length_and_large_bodies_are_not_appended() -> None:
    assert b"Content-Length" not in serialize_request("GET", "/", "h", {}, None)
    big = b"x" * 70000
    raw = serialize_request("POST", "/", "h", {}, big)
    assert raw.endswith(b"Content-Length: 70000\r\n\r\n")


def test_serialize_keeps_a_given_host_and_adds_extra_headers() -> None:
    raw = serialize_request("GET", "/", "h", {"Host": "other"}, None, {"Proxy-Authorization": "p"})
    assert raw == b"GET / HTTP/1.1\r\nHost: other\r\nProxy-Authorization: p\r\n\r\n"


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Evil": "a\r\nInjected: 1"},
        {"X-Evil\r\nInjected": "1"},
        {"X-Evil": "a\nb"},
        {"Bad Name": "x"},
        {"": "x"},
    ],
)
def test_header_injection_is_refused(headers: dict[str, str]) -> None:
    with pytest.raises(InvalidArgumentError):
        serialize_request("GET", "/", "h", headers, None)


def test_bad_target_or_method_is_refused() -> None:
    with pytest.raises(InvalidArgumentError):
        serialize_request("GET", "/a b", "h", {}, None)
    with pytest.raises(InvalidArgumentError):
        serialize_request("GE T", "/", "h", {}, None)


def test_input_waiting_in_the_first_of_several_codings_is_pulled() -> None:
    # Found by the fuzzer: with four content codings, input that waited in the first decoder
    # behind an empty second one was never pulled, and `while parser.pending: feed(b"")`
    # spun forever (a server could hold a call with one answer).
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip, deflate\r\n"
        b"Content-Encoding: gzip, deflate\r\n\r\n"
    )
    parser = ResponseParser("GET", max_body=1 << 20)
    with pytest.raises(ProtocolError, match="decompress"):
        parser.feed(head + b"x00\x00\x00|\xa6\x08{")
        for _ in range(100):
            if not parser.pending:
                break
            parser.feed(b"")
        parser.feed_eof()
    # and a real four-layer body decodes, fed a byte at a time
    body = zlib.compress(gzip.compress(zlib.compress(gzip.compress(b'{"a": 1}'))))
    parser = ResponseParser("GET")
    out = parser.feed(head.replace(b"\r\n\r\n", b"\r\nContent-Length: %d\r\n\r\n" % len(body)))
    decoded = [out]
    for byte in body:
        decoded.append(parser.feed(bytes([byte])))
        for _ in range(1000):
            if not parser.pending:
                break
            decoded.append(parser.feed(b""))
    assert parser.done and b"".join(decoded) == b'{"a": 1}'
