"""Explanation requests (official key order) and response parsing/helpers."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from PIL import Image as PILImageModule

from aleph_alpha_client._exceptions import (
    APIResponseValidationError,
    InvalidArgumentError,
    InvalidArgumentTypeError,
)
from aleph_alpha_client.explanation import (
    CustomGranularity,
    Explanation,
    ExplanationPostprocessing,
    ExplanationRequest,
    ExplanationResponse,
    ImagePromptItemExplanation,
    ImageScore,
    PromptGranularity,
    TargetGranularity,
    TargetPromptItemExplanation,
    TargetScore,
    TargetScoreWithRaw,
    TextPromptItemExplanation,
    TextScore,
    TextScoreWithRaw,
    TokenPromptItemExplanation,
    TokenScore,
    prompt_granularity_to_json,
)
from aleph_alpha_client.prompt import ControlTokenOverlap, Image, Prompt, Text, Tokens

PROMPT = Prompt.from_text("I like pizza")
PROMPT_JSON = '[{"type": "text", "data": "I like pizza", "controls": []}]'


def test_minimal_explain_body() -> None:
    request = ExplanationRequest(
        prompt=PROMPT,
        target=" pizza with cheese",
        target_granularity=TargetGranularity.Token,
        normalize=True,
    )
    request._validate()
    payload = {**request.to_json(), "model": "luminous-base"}
    assert json.dumps(payload) == (
        f'{{"prompt": {PROMPT_JSON}, "target": " pizza with cheese", '
        '"target_granularity": "token", "normalize": true, "model": "luminous-base"}'
    )


def test_full_explain_body_uses_official_key_order() -> None:
    request = ExplanationRequest(
        prompt=PROMPT,
        target=" pizza",
        contextual_control_threshold=0.5,
        control_factor=0.1,
        control_token_overlap=ControlTokenOverlap.Complete,
        control_log_additive=False,
        prompt_granularity=PromptGranularity.Sentence,
        target_granularity=TargetGranularity.Token,
        postprocessing=ExplanationPostprocessing.Absolute,
        normalize=True,
    )
    request._validate()
    assert json.dumps(request.to_json()) == (
        f'{{"prompt": {PROMPT_JSON}, "target": " pizza", "contextual_control_threshold": 0.5, '
        '"control_token_overlap": "complete", "postprocessing": "absolute", '
        '"control_log_additive": false, "prompt_granularity": {"type": "sentence"}, '
        '"target_granularity": "token", "normalize": true, "control_factor": 0.1}'
    )


def test_prompt_granularity_forms() -> None:
    assert prompt_granularity_to_json(CustomGranularity("###")) == {
        "type": "custom",
        "delimiter": "###",
    }
    assert prompt_granularity_to_json("word") == {"type": "word"}
    assert prompt_granularity_to_json(PromptGranularity.Paragraph) == {"type": "paragraph"}
    request = ExplanationRequest(PROMPT, "x", prompt_granularity=CustomGranularity("###"))
    request._validate()
    assert request.to_json()["prompt_granularity"] == {"type": "custom", "delimiter": "###"}


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"target_granularity": "tokens"},
            InvalidArgumentError,
            "target_granularity: expected one of",
        ),
        ({"postprocessing": 3}, InvalidArgumentTypeError, "postprocessing: expected a"),
        ({"prompt_granularity": "line"}, InvalidArgumentError, "prompt_granularity"),
        ({"normalize": "yes"}, InvalidArgumentTypeError, "normalize: expected a bool"),
        ({"control_factor": "0.1"}, InvalidArgumentTypeError, "control_factor: expected a number"),
    ],
)
def test_explain_validation(kwargs: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        ExplanationRequest(PROMPT, "x", **kwargs)._validate()


def test_string_enum_values_are_accepted() -> None:
    request = ExplanationRequest(
        PROMPT,
        "x",
        target_granularity="token",  # type: ignore[arg-type]
        control_token_overlap="partial",  # type: ignore[arg-type]
    )
    request._validate()
    assert request.to_json()["target_granularity"] == "token"
    assert request.to_json()["control_token_overlap"] == "partial"


RESPONSE: dict[str, Any] = {
    "model_version": "2022-04",
    "explanations": [
        {
            "target": " pizza",
            "unknown_field": 1,
            "items": [
                {
                    "type": "image",
                    "scores": [
                        {
                            "rect": {"top": 0.0, "left": 0.0, "width": 0.333, "height": 0.333},
                            "score": 0.84,
                        },
                        {
                            "rect": {"top": 0.5, "left": 0.25, "width": 0.5, "height": 0.5},
                            "score": 0.1,
                        },
                    ],
                },
                {
                    "type": "text",
                    "scores": [
                        {"start": 0, "length": 2, "score": 2.01},
                        {"start": 2, "length": 10, "score": 0.5},
                    ],
                },
                {"type": "token_ids", "scores": [-0.90, -0.18]},
                {"type": "target", "scores": [{"start": 0, "length": 6, "score": 0.3}]},
            ],
        }
    ],
}


def _image(width: int, height: int) -> Image:
    buffer = io.BytesIO()
    PILImageModule.new("RGB", (width, height)).save(buffer, format="PNG")
    return Image.from_bytes(buffer.getvalue())


def test_explanation_response_from_json() -> None:
    response = ExplanationResponse.from_json(RESPONSE)
    assert response == ExplanationResponse(
        model_version="2022-04",
        explanations=[
            Explanation(
                target=" pizza",
                items=[
                    ImagePromptItemExplanation(
                        [
                            ImageScore(left=0.0, top=0.0, width=0.333, height=0.333, score=0.84),
                            ImageScore(left=0.25, top=0.5, width=0.5, height=0.5, score=0.1),
                        ]
                    ),
                    TextPromptItemExplanation([TextScore(0, 2, 2.01), TextScore(2, 10, 0.5)]),
                    TokenPromptItemExplanation([TokenScore(-0.90), TokenScore(-0.18)]),
                    TargetPromptItemExplanation([TargetScore(0, 6, 0.3)]),
                ],
            )
        ],
    )


def test_prompt_item_from_json_is_a_staticmethod() -> None:
    item = {"type": "token_ids", "scores": [1.0]}
    explanation = Explanation(target="t", items=[])
    assert explanation.prompt_item_from_json(item) == TokenPromptItemExplanation([TokenScore(1.0)])
    assert Explanation.prompt_item_from_json(item) == TokenPromptItemExplanation([TokenScore(1.0)])


def test_unknown_explanation_item_type_raises_typed_error() -> None:
    with pytest.raises(APIResponseValidationError, match="audio"):
        Explanation.from_json({"target": "t", "items": [{"type": "audio", "scores": []}]})


def test_with_text_from_prompt() -> None:
    prompt = Prompt([_image(10, 10), Text.from_text("I like pizza"), Tokens([1, 2], [])])
    request = ExplanationRequest(prompt=prompt, target=" pizza")
    response = ExplanationResponse.from_json(RESPONSE).with_text_from_prompt(request)
    items = response.explanations[0].items
    assert items[1] == TextPromptItemExplanation(
        [TextScoreWithRaw(0, 2, 2.01, "I "), TextScoreWithRaw(2, 10, 0.5, "like pizza")]
    )
    assert items[3] == TargetPromptItemExplanation([TargetScoreWithRaw(0, 6, 0.3, " pizza")])
    assert items[2] == TokenPromptItemExplanation([TokenScore(-0.90), TokenScore(-0.18)])


def test_with_image_prompt_items_in_pixels() -> None:
    prompt = Prompt([_image(200, 100), Text.from_text("I like pizza"), Tokens([1, 2], [])])
    response = ExplanationResponse.from_json(RESPONSE).with_image_prompt_items_in_pixels(prompt)
    assert response.explanations[0].items[0] == ImagePromptItemExplanation(
        [
            ImageScore(left=0, top=0, width=66, height=33, score=0.84),
            ImageScore(left=50, top=50, width=100, height=50, score=0.1),
        ]
    )
    with pytest.raises(InvalidArgumentTypeError, match="expected an Image"):
        ImagePromptItemExplanation([]).in_pixels(Text.from_text("x"))
