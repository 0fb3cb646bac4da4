from __future__ import annotations

import json
from datetime import UTC, timedelta

import pytest

from app.contracts import RunRequest, RunResult, RunStatus
from app.streams.messages import DeadLetter, PoisonRecord, decode_request

AGENTS = frozenset({"echo"})


def test_a_valid_request_decodes() -> None:
    request = RunRequest.new("echo", {"message": "hi"}, tenant="acme")
    assert decode_request(request.model_dump_json().encode(), AGENTS, 10_000) == request


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "tombstone"),
        (b"", "empty value"),
        (b"x" * 2000, "oversize"),
        (b"\xff", "invalid UTF-8"),
        (b"{", "invalid JSON"),
        (b"[]", "expected a JSON object"),
        (b'{"run_id": "r", "agent": "echo"}', "input: Field required"),
        (b'{"run_id": "r", "agent": "other", "input": {}}', "unknown agent 'other'"),
    ],
)
def test_poison_says_why(value: bytes | None, reason: str) -> None:
    with pytest.raises(PoisonRecord) as caught:
        decode_request(value, AGENTS, 1000)
    assert reason in caught.value.reason


@pytest.mark.parametrize("value", ["hello", 42, ["a", "b"], None, True])
def test_a_non_object_input_is_wrapped_as_a_message_not_dead_lettered(value: object) -> None:
    record = json.dumps({"run_id": "r", "agent": "echo", "input": value}).encode()
    assert decode_request(record, AGENTS, 10_000).input == {"message": value}
    assert RunRequest.new("echo", value).input == {"message": value}  # what `ferry run` and `submit` build
    assert RunRequest.new("echo", {"a": 1}).input == {"a": 1}


def test_a_dead_letter_keeps_the_original_bytes() -> None:
    letter = DeadLetter.for_record("bad", "t", 1, 7, b"k", b"\x00\xffraw")
    again = DeadLetter.model_validate_json(letter.model_dump_json())
    assert again.original_value() == b"\x00\xffraw" and again.category == "bad_input"


def test_a_result_carries_when_its_request_was_queued() -> None:
    request = RunRequest.new("echo", {"message": "hi"})
    later = request.created_at + timedelta(seconds=2)
    result = RunResult.for_request(request, RunStatus.COMPLETED, started_at=later, ended_at=later)
    assert result.queued_at == request.created_at and result.queued_at.tzinfo is UTC
    old = RunResult.model_validate_json(result.model_dump_json(exclude={"queued_at"}))  # written before the field
    assert old.queued_at is None
