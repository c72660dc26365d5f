"""The emulator's endpoints over real loopback HTTP: shapes, key order, determinism, errors."""

from __future__ import annotations

import base64
import json
import math
import struct
from collections.abc import Iterator
from typing import Any

import pytest

from aleph_alpha_client.emulator import Emulator
from test_emulator_helpers import Http, chat_body, compact, text_prompt


@pytest.fixture
def api(aleph_alpha_emulator: Emulator) -> Iterator[Http]:
    conn = Http(aleph_alpha_emulator)
    yield conn
    conn.close()


def norm(vector: list[float]) -> float:
    return math.sqrt(sum(v * v for v in vector))


# -- chat ------------------------------------------------------------------------------------


def test_chat_shape_and_key_order(api: Http) -> None:
    reply = api.post("/chat/completions", chat_body("Hello, how are you?"))
    assert reply.status == 200
    assert reply.headers["content-type"] == "application/json"
    body = reply.json()
    assert list(body) == [
        "id",
        "choices",
        "created",
        "model",
        "system_fingerprint",
        "object",
        "usage",
    ]
    assert reply.body == compact(body)  # compact separators, like the API
    assert body["object"] == "chat.completion"
    assert body["model"] == "llama-3.1-8b-instruct"
    choice = body["choices"][0]
    assert list(choice) == ["finish_reason", "index", "message", "logprobs"]
    assert choice["finish_reason"] == "stop"
    assert choice["logprobs"] is None
    assert list(choice["message"]) == ["role", "content"]
    assert choice["message"]["role"] == "assistant"
    assert "Hello, how are you?" in choice["message"]["content"]
    usage = body["usage"]
    assert list(usage) == ["prompt_tokens", "completion_tokens", "total_tokens"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0


def test_chat_fact_answer_and_v1_prefix(api: Http) -> None:
    plain = api.post("/chat/completions", chat_body("What is the capital of Spain?"))
    versioned = api.post("/v1/chat/completions", chat_body("What is the capital of Spain?"))
    assert plain.json()["choices"][0]["message"]["content"] == "The capital of Spain is Madrid."
    assert versioned.body == plain.body


def test_chat_echo_truncated_to_200_characters(api: Http) -> None:
    text = "x" * 150 + "y" * 150
    content = api.post("/chat/completions", chat_body(text)).json()["choices"][0]["message"][
        "content"
    ]
    assert text[:200] in content
    assert text[:201] not in content


def test_chat_answers_last_user_message(api: Http) -> None:
    body = {
        "model": "llama-3.1-8b-instruct",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "first answer"},
            {"role": "user", "content": [{"type": "text", "text": "second question"}]},
        ],
    }
    content = api.post("/chat/completions", body).json()["choices"][0]["message"]["content"]
    assert "second question" in content
    assert "first question" not in content


def test_chat_is_deterministic(api: Http) -> None:
    first = api.post("/chat/completions", chat_body("same"))
    second = api.post("/chat/completions", chat_body("same"))
    other = api.post("/chat/completions", chat_body("different"))
    assert first.body == second.body
    assert first.json()["id"] != other.json()["id"]
    assert first.json()["id"].startswith("chatcmpl-")


@pytest.mark.aleph_alpha_emulator(randomness=True)
def test_randomness_gives_fresh_ids(api: Http) -> None:
    first = api.post("/chat/completions", chat_body("same")).json()
    second = api.post("/chat/completions", chat_body("same")).json()
    assert first["id"] != second["id"]
    assert first["choices"] == second["choices"]


def test_chat_maximum_tokens_cuts_with_length(api: Http) -> None:
    full = api.post("/chat/completions", chat_body("tell me something")).json()
    cut = api.post("/chat/completions", chat_body("tell me something", maximum_tokens=3)).json()
    assert cut["choices"][0]["finish_reason"] == "length"
    assert cut["usage"]["completion_tokens"] == 3
    cut_text = cut["choices"][0]["message"]["content"]
    full_text = full["choices"][0]["message"]["content"]
    assert full_text.startswith(cut_text) and len(cut_text) < len(full_text)
    roomy = api.post("/chat/completions", chat_body("tell me something", maximum_tokens=1000))
    assert roomy.json()["choices"][0]["finish_reason"] == "stop"


def test_chat_n_gives_several_choices(api: Http) -> None:
    body = api.post("/chat/completions", chat_body("hi", n=2)).json()
    assert [c["index"] for c in body["choices"]] == [0, 1]


def test_chat_tool_model_sends_empty_tool_calls(api: Http) -> None:
    body = api.post("/chat/completions", chat_body("hi", model="qwen3-32b-tool")).json()
    assert body["choices"][0]["message"]["tool_calls"] == []


def test_chat_stream_framing_and_sequence(api: Http) -> None:
    plain = api.post("/chat/completions", chat_body("stream me")).json()
    reply = api.post("/chat/completions", chat_body("stream me", stream=True))
    assert reply.status == 200
    assert reply.headers["content-type"] == "text/event-stream"
    assert reply.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in reply.headers
    events = reply.events()
    assert events[-1] == "[DONE]"
    for payload in events[:-1]:
        assert payload.encode() == compact(json.loads(payload))
    chunks = [json.loads(e) for e in events[:-1]]
    for chunk in chunks:
        assert list(chunk) == [
            "id",
            "choices",
            "created",
            "model",
            "system_fingerprint",
            "object",
            "usage",
        ]
        assert chunk["object"] == "chat.completion.chunk"
        assert chunk["usage"] is None
    first = chunks[0]["choices"][0]
    assert list(first) == ["finish_reason", "index", "delta", "logprobs"]
    assert first["delta"] == {"role": "assistant", "content": ""}
    last = chunks[-1]["choices"][0]
    assert last["finish_reason"] == "stop" and last["delta"] == {}
    middle = chunks[1:-1]
    assert len(middle) >= 2
    assert all(c["choices"][0]["finish_reason"] is None for c in middle)
    text = "".join(c["choices"][0]["delta"]["content"] for c in middle)
    assert text == plain["choices"][0]["message"]["content"]


def test_chat_stream_usage_chunk_only_with_include_usage(api: Http) -> None:
    plain = api.post("/chat/completions", chat_body("count")).json()
    body = chat_body("count", stream_options={"include_usage": True}, stream=True)
    events = api.post("/chat/completions", body).events()
    usage_chunk = json.loads(events[-2])
    assert events[-1] == "[DONE]"
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"] == plain["usage"]
    assert json.loads(events[-3])["choices"][0]["finish_reason"] == "stop"
    no_usage = chat_body("count", stream_options={"include_usage": False}, stream=True)
    events = api.post("/chat/completions", no_usage).events()
    assert json.loads(events[-2])["choices"][0]["finish_reason"] == "stop"


def test_chat_stream_maximum_tokens(api: Http) -> None:
    events = api.post("/chat/completions", chat_body("abc", maximum_tokens=2, stream=True))
    chunks = events.json_events()
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"


def test_chat_stream_keeps_multibyte_characters_whole(api: Http) -> None:
    text = "Grüße 😀 日本語 ünïcödé"
    reply = api.post("/chat/completions", chat_body(text, stream=True))
    contents = [c["choices"][0]["delta"].get("content", "") for c in reply.json_events()]
    assert "\ufffd" not in "".join(contents)
    assert text in "".join(contents)


# -- tools -----------------------------------------------------------------------------------

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather at a place",
        "parameters": {
            "type": "object",
            "properties": {
                "location": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["location"],
        },
        "strict": True,
    },
}
TIME_TOOL = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {
            "type": "object",
            "properties": {"zone": {"type": "string"}, "hours": {"type": "integer", "minimum": 0}},
            "required": ["zone", "hours"],
        },
    },
}


def tool_body(**extra: Any) -> dict[str, Any]:
    return chat_body(
        "What's the weather in Paris?", model="qwen3-32b-tool", tools=[WEATHER_TOOL], **extra
    )


def test_tool_call_response(api: Http) -> None:
    body = api.post("/chat/completions", tool_body()).json()
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    message = choice["message"]
    assert list(message) == ["role", "content", "tool_calls"]
    assert message["content"] == ""
    (call,) = message["tool_calls"]
    assert list(call) == ["id", "type", "function"]
    assert call["id"].startswith("chatcmpl-tool-")
    assert call["type"] == "function"
    assert list(call["function"]) == ["name", "arguments"]
    assert call["function"]["name"] == "get_weather"
    assert isinstance(call["function"]["arguments"], str)
    arguments = json.loads(call["function"]["arguments"])
    assert arguments["location"] == "Paris"  # the place the question names
    assert arguments["unit"] in ("celsius", "fahrenheit")


def test_tool_choice_none_and_specific_function(api: Http) -> None:
    body = api.post("/chat/completions", tool_body(tool_choice="none")).json()
    assert body["choices"][0]["finish_reason"] == "stop"
    chosen = chat_body(
        "time?",
        model="qwen3-32b-tool",
        tools=[WEATHER_TOOL, TIME_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    call = api.post("/chat/completions", chosen).json()["choices"][0]["message"]["tool_calls"][0]
    assert call["function"]["name"] == "get_time"
    arguments = json.loads(call["function"]["arguments"])
    assert isinstance(arguments["zone"], str) and arguments["hours"] >= 0
    unknown = dict(chosen, tool_choice={"type": "function", "function": {"name": "nope"}})
    reply = api.post("/chat/completions", unknown)
    assert reply.status == 400 and reply.json()["code"] == "INVALID_REQUEST"


def test_tool_result_turn_answers_with_text(api: Http) -> None:
    call = api.post("/chat/completions", tool_body()).json()["choices"][0]["message"]
    history = tool_body()
    history["messages"] = [
        *history["messages"],
        {"role": "assistant", "content": "", "tool_calls": call["tool_calls"]},
        {
            "role": "tool",
            "content": "Cloudy with a bit of rain.",
            "tool_call_id": call["tool_calls"][0]["id"],
        },
    ]
    body = api.post("/chat/completions", history).json()
    assert body["choices"][0]["finish_reason"] == "stop"
    assert "Cloudy with a bit of rain." in body["choices"][0]["message"]["content"]


def test_tool_call_stream(api: Http) -> None:
    plain = api.post("/chat/completions", tool_body()).json()
    expected_call = plain["choices"][0]["message"]["tool_calls"][0]
    events = api.post("/chat/completions", tool_body(stream=True)).events()
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    head = chunks[1]["choices"][0]["delta"]
    assert head["content"] == ""
    (first,) = head["tool_calls"]
    assert list(first) == ["id", "index", "type", "function"]
    assert first["function"] == {"name": "get_weather"}  # no arguments key
    assert first["id"].startswith("chatcmpl-tool-")
    fragments = []
    for chunk in chunks[2:-1]:
        (delta_call,) = chunk["choices"][0]["delta"]["tool_calls"]
        assert delta_call["index"] == 0 and "id" not in delta_call
        fragments.append(delta_call["function"]["arguments"])
    assert len(fragments) >= 2
    assert "".join(fragments) == expected_call["function"]["arguments"]
    final = chunks[-1]["choices"][0]
    assert final["finish_reason"] == "tool_calls"
    assert final["delta"] == {"content": ""}


# -- structured output -----------------------------------------------------------------------


def test_json_schema_answer_validates(api: Http) -> None:
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 2},
            "age": {"type": "integer", "minimum": 0, "maximum": 10},
            "score": {"type": "number", "exclusiveMinimum": 100},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
            "kind": {"enum": ["fish", "bird"]},
            "const": {"const": 7},
            "nested": {"$ref": "#/$defs/Inner"},
            "maybe": {"anyOf": [{"type": "null"}, {"type": "boolean"}]},
        },
        "required": ["name", "age"],
        "$defs": {"Inner": {"type": "object", "properties": {"x": {"type": ["null", "number"]}}}},
    }
    response_format = {
        "type": "json_schema",
        "json_schema": {"schema": schema, "name": "aquarium", "description": None, "strict": True},
    }
    body = chat_body("Describe nemo", model="qwen3-32b-tool", response_format=response_format)
    value = json.loads(
        api.post("/chat/completions", body).json()["choices"][0]["message"]["content"]
    )
    assert len(value["name"]) >= 2 and isinstance(value["name"], str)
    assert isinstance(value["age"], int) and 0 <= value["age"] <= 10
    assert value["score"] > 100
    assert len(value["tags"]) >= 2 and all(isinstance(t, str) for t in value["tags"])
    assert value["kind"] in ("fish", "bird")
    assert value["const"] == 7
    assert isinstance(value["nested"]["x"], float)
    assert value["maybe"] is True


# -- completion ------------------------------------------------------------------------------


def complete_body(text: str, **extra: Any) -> dict[str, Any]:
    return {"prompt": text_prompt(text), "model": "luminous-base", **extra}


def test_complete_shape(api: Http) -> None:
    reply = api.post("/complete", complete_body("What is the capital of Spain?"))
    body = reply.json()
    assert reply.body == compact(body)
    assert list(body) == [
        "completions",
        "model_version",
        "num_tokens_prompt_total",
        "num_tokens_generated",
    ]
    assert body["model_version"] == "2022-04"
    (completion,) = body["completions"]
    assert list(completion) == ["index", "completion", "finish_reason"]
    assert completion["completion"] == " The capital of Spain is Madrid."
    assert completion["finish_reason"] == "end_of_text"


def test_complete_maximum_tokens_log_probs_tokens_raw(api: Http) -> None:
    body = api.post(
        "/complete",
        complete_body(
            "An apple a day",
            maximum_tokens=4,
            log_probs=2,
            tokens=True,
            raw_completion=True,
        ),
    ).json()
    (completion,) = body["completions"]
    assert list(completion) == [
        "index",
        "log_probs",
        "completion",
        "raw_completion",
        "completion_tokens",
        "finish_reason",
    ]
    assert completion["finish_reason"] == "maximum_tokens"
    assert body["num_tokens_generated"] == 4
    assert len(completion["completion_tokens"]) == 4
    assert len(completion["log_probs"]) == 4
    for token, entry in zip(completion["completion_tokens"], completion["log_probs"]):
        assert len(entry) == 2
        assert next(iter(entry)) == token
        assert all(v <= 0 for v in entry.values())
    assert completion["raw_completion"] == completion["completion"]


def test_complete_echo_puts_empty_log_prob_first(api: Http) -> None:
    body = api.post(
        "/complete", complete_body("Hello there", echo=True, log_probs=0, maximum_tokens=3)
    ).json()
    (completion,) = body["completions"]
    assert completion["completion"].startswith("Hello there")
    assert completion["log_probs"][0] == {}
    assert all(len(e) == 1 for e in completion["log_probs"][1:])
    assert body["num_tokens_generated"] == 3


def test_complete_stop_sequences(api: Http) -> None:
    body = api.post(
        "/complete", complete_body("capital of Spain?", stop_sequences=["Madrid", "Spain"])
    ).json()
    assert body["completions"][0]["completion"] == " The capital of "
    assert body["completions"][0]["finish_reason"] == "end_of_text"


def test_complete_n_and_plain_string_and_token_prompts(api: Http) -> None:
    body = api.post("/complete", {"prompt": "hi", "model": "luminous-base", "n": 3}).json()
    assert [c["index"] for c in body["completions"]] == [0, 1, 2]
    ids = api.post(
        "/tokenize", {"prompt": "hi", "tokens": False, "token_ids": True, "model": "luminous-base"}
    ).json()["token_ids"]
    by_ids = api.post(
        "/complete",
        {"prompt": [{"type": "token_ids", "data": ids, "controls": []}], "model": "luminous-base"},
    ).json()
    assert by_ids["completions"][0]["completion"] == body["completions"][0]["completion"]


def test_complete_stream(api: Http) -> None:
    plain = api.post("/complete", complete_body("stream it", maximum_tokens=8)).json()
    reply = api.post("/complete", complete_body("stream it", maximum_tokens=8, stream=True))
    assert reply.headers["transfer-encoding"] == "chunked"
    events = reply.events()
    assert "[DONE]" not in events
    items = [json.loads(e) for e in events]
    kinds = [i["type"] for i in items]
    assert kinds[-2:] == ["stream_summary", "completion_summary"]
    assert set(kinds[:-2]) == {"stream_chunk"} and len(kinds) >= 4
    assert list(items[0]) == ["type", "index", "completion"]
    text = "".join(i["completion"] for i in items[:-2])
    assert text == plain["completions"][0]["completion"]
    assert items[-2] == {
        "type": "stream_summary",
        "index": 0,
        "model_version": "2022-04",
        "finish_reason": "maximum_tokens",
    }
    assert items[-1] == {
        "type": "completion_summary",
        "num_tokens_prompt_total": plain["num_tokens_prompt_total"],
        "num_tokens_generated": 8,
    }


def test_complete_stream_n_2(api: Http) -> None:
    items = api.post("/complete", complete_body("two", n=2, stream=True)).json_events()
    summaries = [i["index"] for i in items if i["type"] == "stream_summary"]
    assert summaries == [0, 1]


# -- embeddings ------------------------------------------------------------------------------


def test_embed_layers_and_pooling(api: Http) -> None:
    request = {
        "prompt": text_prompt("hello"),
        "layers": [0, -1],
        "pooling": ["mean", "max"],
        "type": None,
        "tokens": False,
        "normalize": False,
        "contextual_control_threshold": None,
        "control_log_additive": True,
        "model": "luminous-base",
    }
    body = api.post("/embed", request).json()
    assert list(body) == ["model_version", "embeddings", "tokens", "num_tokens_prompt_total"]
    assert list(body["embeddings"]) == ["layer_0", "layer_40"]
    assert list(body["embeddings"]["layer_40"]) == ["mean", "max"]
    assert len(body["embeddings"]["layer_0"]["mean"]) == 5120
    assert body["tokens"] is None
    again = api.post("/embed", request).json()
    assert again == body
    with_tokens = api.post("/embed", dict(request, tokens=True, normalize=True)).json()
    assert with_tokens["tokens"] == ["hello"]
    assert math.isclose(norm(with_tokens["embeddings"]["layer_0"]["max"]), 1.0, rel_tol=1e-9)
    bad = api.post("/embed", dict(request, layers=[99]))
    assert bad.status == 400


def test_semantic_embed_sizes_and_similarity(api: Http) -> None:
    def embed(text: str, **extra: Any) -> list[float]:
        request = {
            "prompt": text_prompt(text),
            "representation": "symmetric",
            "compress_to_size": None,
            "normalize": True,
            "contextual_control_threshold": None,
            "control_log_additive": True,
            "model": "luminous-base",
            **extra,
        }
        reply = api.post("/semantic_embed", request)
        assert list(reply.json()) == ["model_version", "embedding", "num_tokens_prompt_total"]
        vector: list[float] = reply.json()["embedding"]
        return vector

    assert len(embed("hello")) == 5120
    small = embed("the cat sat on the mat", compress_to_size=128)
    assert len(small) == 128
    assert math.isclose(norm(small), 1.0, rel_tol=1e-9)
    assert embed("the cat sat on the mat", compress_to_size=128) == small
    similar = embed("the cat sat on a mat", compress_to_size=128)
    unrelated = embed("quantum chromodynamics lecture", compress_to_size=128)
    dot = sum(a * b for a, b in zip(small, similar))
    far = sum(a * b for a, b in zip(small, unrelated))
    assert dot > far


def test_batch_semantic_embed(api: Http) -> None:
    request = {
        "prompts": [text_prompt("a"), text_prompt("b"), text_prompt("a")],
        "representation": "document",
        "compress_to_size": 128,
        "normalize": False,
        "contextual_control_threshold": None,
        "control_log_additive": True,
        "model": "luminous-base",
    }
    body = api.post("/batch_semantic_embed", request).json()
    assert list(body) == ["model_version", "embeddings", "num_tokens_prompt_total"]
    assert len(body["embeddings"]) == 3
    assert body["embeddings"][0] == body["embeddings"][2] != body["embeddings"][1]
    assert body["num_tokens_prompt_total"] == 3
    without_model = {k: v for k, v in request.items() if k != "model"}
    assert api.post("/batch_semantic_embed", without_model).status == 200


def test_instructable_embed(api: Http) -> None:
    request = {
        "input": text_prompt("hello"),
        "instruction": "Represent the text to query a database of salutations",
        "normalize": True,
        "contextual_control_threshold": None,
        "control_log_additive": True,
        "model": "pharia-1-embedding-4608-control",
    }
    body = api.post("/instructable_embed", request).json()
    assert list(body) == ["model_version", "embedding", "num_tokens_prompt_total"]
    assert len(body["embedding"]) == 4608
    assert math.isclose(norm(body["embedding"]), 1.0, rel_tol=1e-9)


def test_openai_embeddings_float_and_base64(api: Http) -> None:
    request = {"input": ["hello", "world"], "model": "pharia-1-embedding-4608-control"}
    body = api.post("/embeddings", request).json()
    assert list(body) == ["object", "data", "model", "usage"]
    assert body["object"] == "list"
    assert body["model"] == "pharia-1-embedding-4608-control"
    assert [list(d) for d in body["data"]] == [["object", "embedding", "index"]] * 2
    assert [d["index"] for d in body["data"]] == [0, 1]
    assert body["data"][0]["object"] == "embedding"
    assert len(body["data"][0]["embedding"]) == 4608
    assert list(body["usage"]) == ["prompt_tokens", "total_tokens"]
    small = api.post("/embeddings", dict(request, dimensions=8)).json()["data"][0]["embedding"]
    assert len(small) == 8
    packed = api.post("/embeddings", dict(request, dimensions=8, encoding_format="base64"))
    raw = base64.b64decode(packed.json()["data"][0]["embedding"])
    decoded = struct.unpack("<8f", raw)
    assert all(math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-7) for a, b in zip(decoded, small))
    single = api.post("/embeddings", {"input": "hello", "model": "luminous-base"}).json()
    assert len(single["data"]) == 1 and len(single["data"][0]["embedding"]) == 5120


# -- other endpoints -------------------------------------------------------------------------


def test_evaluate(api: Http) -> None:
    request = {
        "prompt": text_prompt("hello"),
        "completion_expected": "world",
        "contextual_control_threshold": None,
        "control_log_additive": True,
        "model": "luminous-base",
    }
    body = api.post("/evaluate", request).json()
    assert list(body) == ["model_version", "result", "num_tokens_prompt_total"]
    assert list(body["result"]) == [
        "log_probability",
        "log_perplexity",
        "log_perplexity_per_token",
        "log_perplexity_per_character",
        "correct_greedy",
        "token_count",
        "character_count",
        "completion",
    ]
    result = body["result"]
    assert result["log_probability"] < 0 and result["log_perplexity"] == -result["log_probability"]
    assert result["character_count"] == 5 and result["correct_greedy"] is False
    good = api.post(
        "/evaluate",
        dict(request, prompt=text_prompt("capital of Spain?"), completion_expected=" The"),
    ).json()
    assert good["result"]["correct_greedy"] is True


def test_explain(api: Http) -> None:
    request = {
        "prompt": [
            {"type": "text", "data": "I like pizza. And cheese.", "controls": []},
            {"type": "image", "data": "aGVsbG8=", "controls": []},
            {"type": "token_ids", "data": [1, 2, 3], "controls": []},
        ],
        "target": " pizza with cheese",
        "prompt_granularity": {"type": "sentence"},
        "target_granularity": "token",
        "postprocessing": "absolute",
        "normalize": True,
        "model": "luminous-base",
    }
    body = api.post("/explain", request).json()
    assert list(body) == ["model_version", "explanations"]
    explanations = body["explanations"]
    assert "".join(e["target"] for e in explanations) == " pizza with cheese"
    assert len(explanations) > 1
    for k, explanation in enumerate(explanations):
        assert list(explanation) == ["target", "items"]
        types = [item["type"] for item in explanation["items"]]
        assert types == ["text", "image", "token_ids", "target"]
        text_scores = explanation["items"][0]["scores"]
        assert [(s["start"], s["length"]) for s in text_scores] == [(0, 14), (14, 11)]
        assert all(list(s) == ["start", "length", "score"] for s in text_scores)
        image = explanation["items"][1]["scores"]
        assert len(image) == 9
        assert list(image[0]) == ["rect", "score"]
        assert list(image[0]["rect"]) == ["top", "left", "width", "height"]
        assert len(explanation["items"][2]["scores"]) == 3
        assert len(explanation["items"][3]["scores"]) == k
        scores = [s["score"] for s in text_scores] + [s["score"] for s in image]
        assert all(0 <= s <= 1 for s in scores)
    whole = api.post(
        "/explain", {"prompt": text_prompt("a b c"), "target": " d", "model": "luminous-base"}
    ).json()
    assert [e["target"] for e in whole["explanations"]] == [" d"]
    custom = api.post(
        "/explain",
        {
            "prompt": text_prompt("a###bb###c"),
            "target": " d",
            "prompt_granularity": {"type": "custom", "delimiter": "###"},
            "model": "luminous-base",
        },
    ).json()
    spans = [(s["start"], s["length"]) for s in custom["explanations"][0]["items"][0]["scores"]]
    assert spans == [(0, 1), (4, 2), (9, 1)]


def test_tokenize_detokenize_roundtrip(api: Http) -> None:
    text = "Hello, wörld! 😀  spaces\n\tand 12345 tabs"
    body = api.post(
        "/tokenize", {"prompt": text, "tokens": True, "token_ids": True, "model": "luminous-base"}
    ).json()
    assert list(body) == ["tokens", "token_ids"]
    assert len(body["tokens"]) == len(body["token_ids"])
    assert body["tokens"][0] == "Hello"
    back = api.post("/detokenize", {"token_ids": body["token_ids"], "model": "luminous-base"})
    assert back.json() == {"result": text}
    only_ids = api.post(
        "/tokenize",
        {"prompt": "Hello", "tokens": False, "token_ids": True, "model": "luminous-base"},
    ).json()
    assert only_ids["tokens"] is None and only_ids["token_ids"] == body["token_ids"][:1]
    bad = api.post("/detokenize", {"token_ids": [10**9], "model": "luminous-base"})
    assert bad.status == 400


def test_rerank(api: Http) -> None:
    request = {
        "query": "What is the capital of France?",
        "documents": ["Berlin is in Germany", "Paris is the capital of France", "cats purr"],
        "top_n": 2,
        "model": "bge-reranker-v2-m3",
    }
    body = api.post("/rerank", request).json()
    assert list(body) == ["results", "usage"]
    assert [r["index"] for r in body["results"]] == [1, 0]
    assert all(list(r) == ["index", "relevance_score"] for r in body["results"])
    scores = [r["relevance_score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True)
    assert list(body["usage"]) == ["prompt_tokens", "completion_tokens", "total_tokens"]
    everything = api.post("/rerank", {k: v for k, v in request.items() if k != "top_n"}).json()
    assert len(everything["results"]) == 3


def test_translate(api: Http) -> None:
    request = {"model": "pharia-1-mt-translation", "source": "Hello", "target_language": "de"}
    body = api.post("/translate", request).json()
    assert list(body) == [
        "translation",
        "score",
        "segments",
        "num_tokens_prompt_total",
        "num_tokens_generated",
    ]
    assert body["translation"] == "Hallo" and body["segments"] is None
    other = api.post("/translate", dict(request, source="Good morning")).json()
    assert "Good morning" in other["translation"]


def test_steering_concepts_answer_201(api: Http) -> None:
    request = {
        "examples": [
            {"negative": "I appreciate your valuable feedback.", "positive": "Thanks, fam."}
        ]
    }
    reply = api.post("/steering_concepts", request)
    assert reply.status == 201
    (concept_id,) = reply.json().values()
    assert list(reply.json()) == ["id"]
    assert len(concept_id) == 64 and int(concept_id, 16) >= 0
    steered = chat_body("hi", steering_concepts=[concept_id])
    assert api.post("/chat/completions", steered).status == 200


def test_models_available_version_and_tokenizer(api: Http) -> None:
    models = api.get("/models_available").json()
    names = [m["name"] for m in models]
    for name in (
        "luminous-base",
        "llama-3.1-8b-instruct",
        "qwen3-32b-tool",
        "pharia-1-embedding-4608-control",
        "bge-reranker-v2-m3",
        "pharia-1-mt-translation",
    ):
        assert name in names
    assert list(models[0]) == [
        "name",
        "description",
        "max_context_size",
        "hostings",
        "image_support",
        "qa_support",
        "summarization_support",
        "embedding_types",
        "maximum_completion_tokens",
        "aligned",
    ]
    version = api.get("/version")
    assert version.status == 200 and version.headers["content-type"].startswith("text/plain")
    major, minor, _patch = (int(p) for p in version.body.decode().split("."))
    assert major == 1 and minor >= 19
    tokenizer = api.get("/models/luminous-base/tokenizer")
    assert tokenizer.status == 200
    document = tokenizer.json()
    assert document["model"]["type"] == "BPE"
    assert api.get("/v1/models/nope/tokenizer").status == 400


@pytest.mark.aleph_alpha_emulator(version="2.0.0")
def test_version_is_configurable(api: Http) -> None:
    assert api.get("/v1/version").body == b"2.0.0"


def test_chat_with_images_needs_image_model(api: Http) -> None:
    content = [
        {"type": "text", "text": "Describe the following image."},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,aGVsbG8="}},
    ]
    body = {"model": "dummy-model", "messages": [{"role": "user", "content": content}]}
    reply = api.post("/chat/completions", body).json()
    assert "1 image" in reply["choices"][0]["message"]["content"]
    refused = api.post("/chat/completions", dict(body, model="llama-3.1-8b-instruct"))
    assert refused.status == 400 and refused.json()["code"] == "MISSING_CAPABILITY"


# -- errors ----------------------------------------------------------------------------------


def assert_error(reply: Any, status: int, code: str) -> None:
    assert reply.status == status
    assert reply.headers["content-type"] == "application/json"
    body = reply.json()
    assert list(body) == ["error", "code"]
    assert body["code"] == code
    assert isinstance(body["error"], str) and body["error"]


def test_error_shapes(api: Http) -> None:
    assert_error(
        api.post("/chat/completions", chat_body("x", model="no-such-model")), 400, "UNKNOWN_MODEL"
    )
    assert_error(api.post("/complete", None, raw=b"{not json"), 400, "INVALID_JSON")
    assert_error(api.post("/complete", None, raw=b"[1, 2]"), 400, "INVALID_JSON")
    assert_error(api.post("/complete", {"model": "luminous-base"}), 400, "INVALID_REQUEST")
    assert_error(api.post("/chat/completions", {"messages": []}), 400, "INVALID_REQUEST")
    assert_error(
        api.post("/chat/completions", chat_body("x", maximum_tokens=-1)), 400, "INVALID_REQUEST"
    )
    assert_error(
        api.post("/chat/completions", chat_body("x", model="luminous-base")),
        400,
        "MISSING_CAPABILITY",
    )
    assert_error(
        api.post(
            "/embed",
            {"prompt": "x", "layers": [0], "pooling": ["mean"], "model": "llama-3.1-8b-instruct"},
        ),
        400,
        "MISSING_CAPABILITY",
    )
    assert_error(api.get("/no/such/route"), 404, "NOT_FOUND")
    assert_error(api.get("/complete"), 405, "METHOD_NOT_ALLOWED")
    assert_error(api.post("/models_available", {}), 405, "METHOD_NOT_ALLOWED")


@pytest.mark.aleph_alpha_emulator(token="s3cret")
def test_token_is_checked(aleph_alpha_emulator: Emulator) -> None:
    anonymous = Http(aleph_alpha_emulator)
    wrong = Http(aleph_alpha_emulator, token="wrong")
    right = Http(aleph_alpha_emulator, token="s3cret")
    try:
        assert_error(anonymous.post("/chat/completions", chat_body("x")), 401, "UNAUTHENTICATED")
        assert_error(wrong.post("/chat/completions", chat_body("x")), 401, "UNAUTHENTICATED")
        assert_error(wrong.get("/models_available"), 401, "UNAUTHENTICATED")
        assert right.post("/chat/completions", chat_body("x")).status == 200
        assert anonymous.get("/version").status == 200
    finally:
        for conn in (anonymous, wrong, right):
            conn.close()
