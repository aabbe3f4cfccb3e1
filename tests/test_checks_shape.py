"""Unit tests of conformance.checks.shape: schema violations and their attribution, null optional fields."""

from __future__ import annotations

from typing import Any

import pytest
from builders import choice, chunk, completion, logprob_entry, tool_call, usage

from conformance.checks.shape import brief, json_type, pointer, schema_violations


def ids(found: list[Any]) -> list[str]:
    return [v.requirement for v in found]


def test_valid_completion_has_no_violation() -> None:
    assert schema_violations(completion(), "chat-completion") == []


@pytest.mark.parametrize(
    "doc",
    [
        # open points the contract leaves to the server: none of these is a fault
        completion(object=None, usage=None, system_fingerprint=None, service_tier=None, extra_key={"a": 1}),
        completion(drop=("object", "usage")),
        completion(
            choices=[
                choice(logprobs=None, content=None, tool_calls=[tool_call()], finish_reason="tool_calls")
            ]
        ),
        completion(
            choices=[
                {
                    **choice(),
                    "message": {
                        "role": "assistant",
                        "content": "hi",
                        "refusal": None,
                        "annotations": None,
                        "audio": None,
                        "function_call": None,
                        "tool_calls": None,
                        "reasoning_content": "hmm",
                    },
                }
            ]
        ),
        completion(
            service_tier="scale",
            usage=usage(
                completion_tokens_details=None,
                prompt_tokens_details={"cached_tokens": 0, "audio_tokens": None, "text_tokens": 3},
            ),
        ),
        completion(
            choices=[choice(logprobs={"content": [logprob_entry("a", bytes_=None)], "refusal": None})]
        ),
        completion(created=1.0 * 1_700_000_000),
    ],
)
def test_open_points_are_not_violations(doc: dict[str, Any]) -> None:
    assert schema_violations(doc, "chat-completion") == []


@pytest.mark.parametrize(
    ("doc", "requirement", "where"),
    [
        (completion(drop=("id",)), "RESP-001", ""),
        (completion(created="now"), "RESP-001", "/created"),
        (completion(choices={"0": choice()}), "RESP-001", "/choices"),
        (completion(object="chat.completion.chunk"), "RESP-002", "/object"),
        (completion(choices=[choice(finish_reason="done")]), "RESP-003", "/choices/0/finish_reason"),
        (completion(choices=[choice(index="0")]), "RESP-003", "/choices/0/index"),
        (
            completion(choices=[{**choice(), "message": {"role": "user", "content": "x"}}]),
            "RESP-004",
            "/choices/0/message/role",
        ),
        (completion(choices=[choice(content=5)]), "RESP-004", "/choices/0/message/content"),
        (completion(usage=usage(prompt=-1, total=2)), "RESP-005", "/usage/prompt_tokens"),
        (completion(usage={"prompt_tokens": 1}), "RESP-005", "/usage"),
        (
            completion(choices=[choice(logprobs={"content": [logprob_entry("a", bytes_=[300])]})]),
            "RESP-006",
            "/choices/0/logprobs/content/0/bytes/0",
        ),
        (
            completion(choices=[choice(logprobs={"content": [{"token": "a", "logprob": -1}]})]),
            "RESP-006",
            "/choices/0/logprobs/content/0",
        ),
        (
            completion(choices=[choice(tool_calls=[{"id": "c", "type": "function"}])]),
            "RESP-007",
            "/choices/0/message/tool_calls/0",
        ),
        (
            completion(
                choices=[choice(tool_calls=[{"id": "c", "type": "function", "function": {"name": "f"}}])]
            ),
            "RESP-007",
            "/choices/0/message/tool_calls/0/function",
        ),
        (
            completion(choices=[{**choice(), "message": {"role": "assistant", "audio": {"id": "a"}}}]),
            "RESP-008",
            "/choices/0/message/audio",
        ),
        (completion(service_tier="turbo"), "RESP-009", "/service_tier"),
    ],
)
def test_schema_errors_are_attributed(doc: dict[str, Any], requirement: str, where: str) -> None:
    found = schema_violations(doc, "chat-completion", "s1")
    # a missing-keys error comes once per key, all at the object's pointer
    assert {(v.requirement, v.pointer) for v in found} == {(requirement, where)}
    assert found[0].scenario == "s1"
    assert found[0].schema_excerpt is not None


def test_message_is_short_and_names_the_field() -> None:
    found = schema_violations(
        completion(drop=("model",), choices=[choice(content="x" * 5000)]), "chat-completion"
    )
    assert len(found) == 1 and "'model'" in found[0].message
    big = schema_violations(completion(choices="y" * 5000), "chat-completion")
    assert len(big[0].message) < 200 and "expected array, got string" in big[0].message


@pytest.mark.parametrize(
    ("doc", "requirement", "where"),
    [
        ({**chunk(), "id": None}, "STRM-010", "/id"),
        ({k: v for k, v in chunk().items() if k != "choices"}, "STRM-010", ""),
        (chunk(object="chat.completion"), "STRM-010", "/object"),
        (chunk(choices=[{"index": 0}]), "STRM-011", "/choices/0"),
        (chunk({}, finish_reason="finished"), "STRM-011", "/choices/0/finish_reason"),
        (chunk({"role": "robot"}), "STRM-012", "/choices/0/delta/role"),
        (chunk({"tool_calls": [{"id": "c"}]}), "STRM-012", "/choices/0/delta/tool_calls/0"),
        (
            chunk(choices=[], usage={"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": "2"}),
            "RESP-005",
            "/usage/total_tokens",
        ),
    ],
)
def test_chunk_schema_errors_are_attributed(doc: dict[str, Any], requirement: str, where: str) -> None:
    found = schema_violations(doc, "chat-completion-chunk")
    assert [(v.requirement, v.pointer) for v in found] == [(requirement, where)]


def test_valid_chunks() -> None:
    assert schema_violations(chunk({"role": "assistant", "content": ""}), "chat-completion-chunk") == []
    assert schema_violations(chunk(choices=[], usage=usage()), "chat-completion-chunk") == []
    assert (
        schema_violations(
            chunk(
                {"content": None, "tool_calls": [{"index": 0, "function": {"arguments": "{"}}]},
                logprobs=None,
                obfuscation="xyz",
            ),
            "chat-completion-chunk",
        )
        == []
    )


@pytest.mark.parametrize(
    "doc",
    [
        None,
        "x",
        5,
        [],
        [completion()],
        {},
        completion(choices="x"),
        completion(usage=[]),
        completion(choices=[choice(logprobs=5)]),
        completion(choices=[None, 1, "a", []]),
        completion(choices=[{"index": 0, "message": "hi", "finish_reason": 3, "logprobs": {"content": 7}}]),
        completion(created=float("nan")),
        completion(id={"nested": [1, {"a": None}]}),
    ],
)
@pytest.mark.parametrize("schema", ["chat-completion", "chat-completion-chunk"])
def test_hostile_documents_are_reported_not_raised(doc: Any, schema: str) -> None:
    found = schema_violations(doc, schema)
    assert found and all(v.message for v in found)


def test_helpers() -> None:
    assert pointer("choices", 0, "a/b", "c~d") == "/choices/0/a~1b/c~0d"
    assert pointer() == ""
    assert brief("x" * 100).endswith("…") and len(brief("x" * 100)) == 40
    assert [json_type(v) for v in (None, True, 1, 1.5, "s", [], {})] == [
        "null",
        "boolean",
        "integer",
        "number",
        "string",
        "array",
        "object",
    ]
