"""Fault injection: scripted and rate-based faults over real loopback HTTP, and spec parsing."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator

import pytest

from aleph_alpha_client.emulator import Emulator, Fault, FaultPlan, parse_fault_spec
from test_emulator_helpers import Http, chat_body, text_prompt


@pytest.fixture
def api(aleph_alpha_emulator: Emulator) -> Iterator[Http]:
    conn = Http(aleph_alpha_emulator)
    yield conn
    conn.close()


def stream_body(text: str = "stream") -> dict[str, object]:
    return chat_body(text, stream=True)


def test_script_status_reset_then_normal(aleph_alpha_emulator: Emulator, api: Http) -> None:
    aleph_alpha_emulator.script(
        [
            Fault.status(503, retry_after=0),
            Fault.status(429, retry_after_ms=250),
            Fault.reset(),
            None,
        ]
    )
    first = api.post("/chat/completions", chat_body("x"))
    assert first.status == 503
    assert first.headers["retry-after"] == "0"
    assert first.json() == {
        "error": "Injected fault: HTTP 503 SERVICE_UNAVAILABLE",
        "code": "SERVICE_UNAVAILABLE",
    }
    second = api.post("/chat/completions", chat_body("x"))
    assert second.status == 429 and second.headers["retry-after-ms"] == "250"
    assert "retry-after" not in second.headers
    assert second.json()["code"] == "TOO_MANY_REQUESTS"
    with pytest.raises(ConnectionError):
        api.post("/chat/completions", chat_body("x"))
    api.close()
    assert api.post("/chat/completions", chat_body("x")).status == 200  # the None entry
    assert api.post("/chat/completions", chat_body("x")).status == 200  # script exhausted
    assert aleph_alpha_emulator.faults.pending == 0
    assert len(aleph_alpha_emulator.requests) == 5


def test_scripts_queue_up_and_clear_script_drops_what_is_left(
    aleph_alpha_emulator: Emulator, api: Http
) -> None:
    aleph_alpha_emulator.script([Fault.status(503, retry_after=0), Fault.status(503)])
    aleph_alpha_emulator.script([Fault.status(429, retry_after=0)])  # after the first script
    assert api.post("/chat/completions", chat_body("x")).status == 503
    assert aleph_alpha_emulator.faults.pending == 2
    aleph_alpha_emulator.clear_script()
    assert aleph_alpha_emulator.faults.pending == 0
    assert api.post("/chat/completions", chat_body("x")).status == 200


def test_status_fault_with_custom_code_and_message(
    aleph_alpha_emulator: Emulator, api: Http
) -> None:
    aleph_alpha_emulator.script([Fault.status(500, message="boom", code="INTERNAL")])
    reply = api.post("/complete", {"prompt": "x", "model": "luminous-base"})
    assert reply.status == 500 and reply.json() == {"error": "boom", "code": "INTERNAL"}


def test_script_filtered_by_path(aleph_alpha_emulator: Emulator, api: Http) -> None:
    aleph_alpha_emulator.script([Fault.status(503)], path="chat/completions")
    assert api.get("/version").status == 200
    assert api.post("/complete", {"prompt": "x", "model": "luminous-base"}).status == 200
    assert api.post("/v1/chat/completions", chat_body("x")).status == 503
    assert api.post("/v1/chat/completions", chat_body("x")).status == 200


def test_fault_own_path_leaves_entry_for_matching_request(
    aleph_alpha_emulator: Emulator, api: Http
) -> None:
    aleph_alpha_emulator.script([Fault.status(502, path="embed*")])
    assert api.get("/models_available").status == 200
    request = {"prompt": "x", "layers": [0], "pooling": ["mean"], "model": "luminous-base"}
    assert api.post("/embed", request).status == 502
    assert api.post("/embed", request).status == 200


def test_reset_mid_body_for_json_and_stream(aleph_alpha_emulator: Emulator) -> None:
    aleph_alpha_emulator.script(
        [Fault.reset(mid_body=True), Fault.reset(mid_body=True, after_events=2)]
    )
    conn = http.client.HTTPConnection("127.0.0.1", aleph_alpha_emulator.port, timeout=10)
    try:
        conn.request("POST", "/chat/completions", body=json.dumps(chat_body("x")))
        response = conn.getresponse()
        assert response.status == 200
        with pytest.raises((ConnectionError, http.client.IncompleteRead)):
            response.read()
        conn.close()
        conn.request("POST", "/chat/completions", body=json.dumps(stream_body()))
        response = conn.getresponse()
        assert response.status == 200
        with pytest.raises((ConnectionError, http.client.IncompleteRead)):
            response.read()
    finally:
        conn.close()


def test_cut_stream_ends_cleanly_without_done(aleph_alpha_emulator: Emulator, api: Http) -> None:
    aleph_alpha_emulator.script([Fault.cut(after_events=2)])
    reply = api.post("/chat/completions", stream_body())
    events = reply.events()
    assert len(events) == 2 and "[DONE]" not in events
    assert json.loads(events[0])["choices"][0]["delta"]["role"] == "assistant"
    # the connection is still usable afterwards
    assert api.post("/chat/completions", stream_body()).events()[-1] == "[DONE]"


def test_cut_completion_stream_drops_summaries(aleph_alpha_emulator: Emulator, api: Http) -> None:
    aleph_alpha_emulator.script([Fault.cut(after_events=1)])
    body = {"prompt": text_prompt("x"), "model": "luminous-base", "stream": True}
    events = api.post("/complete", body).json_events()
    assert [e["type"] for e in events] == ["stream_chunk"]


def test_cut_json_body_is_half_a_document(aleph_alpha_emulator: Emulator, api: Http) -> None:
    full = api.post("/chat/completions", chat_body("x"))
    aleph_alpha_emulator.script([Fault.cut()])
    cut = api.post("/chat/completions", chat_body("x"))
    assert cut.status == 200
    assert cut.body == full.body[: len(full.body) // 2]
    with pytest.raises(ValueError):
        json.loads(cut.body)


def test_error_event_in_stream_and_plain(aleph_alpha_emulator: Emulator, api: Http) -> None:
    aleph_alpha_emulator.script(
        [
            Fault.error_event("OVERLOADED", after_events=1),
            Fault.error_event("CUSTOM", "bad things", after_events=0),
            Fault.error_event(),
        ]
    )
    events = api.post("/chat/completions", stream_body()).events()
    assert len(events) == 2
    assert json.loads(events[-1]) == {
        "error": "The model is overloaded, please try again later.",
        "code": "OVERLOADED",
    }
    events = api.post("/chat/completions", stream_body()).events()
    assert [json.loads(e) for e in events] == [{"error": "bad things", "code": "CUSTOM"}]
    plain = api.post("/chat/completions", chat_body("x"))
    assert plain.status == 200 and plain.json()["code"] == "OVERLOADED"


def test_malformed_and_wrong_content_type(aleph_alpha_emulator: Emulator, api: Http) -> None:
    aleph_alpha_emulator.script([Fault.malformed(), Fault.content_type("text/plain")])
    bad = api.post("/chat/completions", chat_body("x"))
    assert bad.status == 200 and bad.headers["content-type"] == "text/html"
    with pytest.raises(ValueError):
        json.loads(bad.body)
    typed = api.post("/chat/completions", chat_body("x"))
    assert typed.headers["content-type"] == "text/plain"
    assert "x" in typed.json()["choices"][0]["message"]["content"]


def test_latency_before_first_byte(aleph_alpha_emulator: Emulator) -> None:
    aleph_alpha_emulator.script([Fault.latency(30)])
    slow = Http(aleph_alpha_emulator, timeout=0.2)
    try:
        with pytest.raises(TimeoutError):
            slow.post("/chat/completions", chat_body("x"))
    finally:
        slow.close()
    fast = Http(aleph_alpha_emulator)
    try:
        assert fast.post("/chat/completions", chat_body("x")).status == 200
    finally:
        fast.close()


def test_latency_between_stream_events(aleph_alpha_emulator: Emulator) -> None:
    aleph_alpha_emulator.script([Fault.stream_latency(30)])
    conn = http.client.HTTPConnection("127.0.0.1", aleph_alpha_emulator.port, timeout=0.3)
    try:
        conn.request("POST", "/chat/completions", body=json.dumps(stream_body()))
        response = conn.getresponse()
        assert response.status == 200
        first = response.read1()
        assert first.startswith(b"data: {")
        with pytest.raises(TimeoutError):
            response.read()
    finally:
        conn.close()


def test_combined_faults_in_one_entry(aleph_alpha_emulator: Emulator, api: Http) -> None:
    aleph_alpha_emulator.script([[Fault.latency(0.01), Fault.cut(after_events=1)]])
    assert len(api.post("/chat/completions", stream_body()).events()) == 1


def run_statuses(emu: Emulator, count: int) -> list[int]:
    conn = Http(emu)
    try:
        return [conn.post("/chat/completions", chat_body(str(i))).status for i in range(count)]
    finally:
        conn.close()


def test_rate_faults_are_seeded(aleph_alpha_emulator_factory: object) -> None:
    factory = aleph_alpha_emulator_factory
    assert callable(factory)
    first = run_statuses(factory(faults="503:0.5", seed=7), 60)
    second = run_statuses(factory(faults="503:0.5", seed=7), 60)
    assert first == second
    assert 0 < first.count(503) < 60
    assert set(first) == {200, 503}


def test_rate_fault_with_path_only_hits_matching_routes(
    aleph_alpha_emulator_factory: object,
) -> None:
    factory = aleph_alpha_emulator_factory
    assert callable(factory)
    emu = factory(faults="500:1:path=complete")
    conn = Http(emu)
    try:
        assert conn.post("/chat/completions", chat_body("x")).status == 200
        assert conn.post("/complete", {"prompt": "x", "model": "luminous-base"}).status == 500
    finally:
        conn.close()


def test_set_faults_and_reset(aleph_alpha_emulator: Emulator, api: Http) -> None:
    aleph_alpha_emulator.set_faults("418")
    assert api.get("/version").status == 418
    aleph_alpha_emulator.reset()
    assert api.get("/version").status == 200
    assert len(aleph_alpha_emulator.requests) == 1


# -- spec strings ----------------------------------------------------------------------------


def test_parse_spec_examples() -> None:
    plan = parse_fault_spec("503:0.1,reset:0.05,latency=0.2")
    assert plan.latency == 0.2
    assert [(f.kind, f.status_code, p) for f, p in plan.rates] == [
        ("status", 503, 0.1),
        ("reset", 503, 0.05),
    ]
    plan = parse_fault_spec(
        "429:0.2:retry_after=1.5:retry_after_ms=1500,"
        "error:0.1:code=OVERLOADED:after=2:path=chat/*,"
        "reset:0.1:mid_body=1:after=3,cut:0.1:after=4,malformed:0.05,"
        "content_type:0.05:content_type=text/html,latency:0.1:seconds=2,"
        "stream_latency=0.01,seed=5"
    )
    faults = [f for f, _p in plan.rates]
    assert faults[0] == Fault.status(429, retry_after=1.5, retry_after_ms=1500)
    assert faults[0].retry_headers() == [("Retry-After", "1.5"), ("retry-after-ms", "1500")]
    assert faults[1] == Fault.error_event("OVERLOADED", after_events=2, path="chat/*")
    assert faults[1].matches("chat/completions") and not faults[1].matches("complete")
    assert faults[2] == Fault.reset(mid_body=True, after_events=3)
    assert faults[3] == Fault.cut(4)
    assert faults[4] == Fault.malformed()
    assert faults[5] == Fault.content_type("text/html")
    assert faults[6] == Fault.latency(2)
    assert plan.stream_latency == 0.01
    assert parse_fault_spec("cut").rates == [(Fault.cut(1), 1.0)]
    assert FaultPlan.parse("").rates == []


@pytest.mark.parametrize(
    "spec",
    ["503:0.7,429:0.7", "bogus:0.1", "503:lots", "503:0.1:nope=1", "speed=3", "99", "503:1.5"],
)
def test_parse_spec_rejects_bad_input(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_fault_spec(spec)
