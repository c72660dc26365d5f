"""Coverage-guided fuzzing of the HTTP/1.1 response parser, the SSE decoder and redirects.

Run by hand (atheris needs CPython 3.8-3.11 and has manylinux wheels)::

    pip install atheris
    mkdir -p fuzz/corpus
    python fuzz/fuzz_http11.py fuzz/corpus fuzz/seeds -max_total_time=60   # a minute

(new inputs go to the first folder; ``fuzz/seeds`` holds a few valid answers to start from).
Each input is cut into network reads at offsets taken from its first 3 bytes, fed to
``ResponseParser`` (then EOF), its body to the chat stream processor (SSE decoding and
accumulation), and its status and headers to the redirect logic. Anything but our documented error types is a finding (atheris prints the input and
writes ``crash-*``); so is a decoding step larger than ``MAX_DECODE_STEP``.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from aleph_alpha_client._exceptions import AlephAlphaError
    from aleph_alpha_client._http11 import MAX_DECODE_STEP, ProtocolError, ResponseParser
    from aleph_alpha_client._net import split_url
    from aleph_alpha_client._streaming import ChatStreamState, StreamProcessor
    from aleph_alpha_client._transport import HTTPRequest
    from aleph_alpha_client._wire import redirect

_REQUEST = HTTPRequest("GET", "http://127.0.0.1:8000/v1/x", {"Authorization": "Bearer t"})


def _pieces(data: bytes) -> list[bytes]:
    if len(data) < 3:
        return [data]
    cuts, rest = data[:3], data[3:]
    points = sorted({c * max(1, len(rest) // 256) % (len(rest) + 1) for c in cuts})
    out, last = [], 0
    for p in points:
        out.append(rest[last:p])
        last = p
    out.append(rest[last:])
    return out


def one_input(data: bytes) -> None:
    method = "HEAD" if data[:1] == b"H" else "GET"
    parser = ResponseParser(method, max_body=1 << 20)
    body = []
    try:
        for piece in [*_pieces(data), None]:
            out = parser.feed_eof() if piece is None else parser.feed(piece)
            body.append(out)
            while parser.pending:
                out = parser.feed(b"")
                body.append(out)
                if len(out) > MAX_DECODE_STEP:
                    raise AssertionError("a decoding step larger than MAX_DECODE_STEP")
            if parser.done:
                break
    except ProtocolError:
        pass
    if parser.head_done:
        try:
            follow = redirect(_REQUEST, parser.status, parser.headers)
            if follow is not None:
                split_url(follow.url)
        except AlephAlphaError:
            pass
    processor = StreamProcessor(ChatStreamState(False), 4096)
    try:
        for out in body:
            processor.feed(out)
        processor.finish()
    except AlephAlphaError:
        pass


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
