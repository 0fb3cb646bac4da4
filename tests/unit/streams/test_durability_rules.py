"""The durability rules as a worker reads them: checkpoints per agent, later tries, kept failures."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from app.contracts import RunRequest
from app.contracts.errors import ErrorCategory
from app.project.config import ProjectConfig
from app.streams.checkpoints import CheckpointStore, checkpoint_partition
from app.streams.naming import TopicNames
from app.streams.outbox import Outbox
from app.streams.replay import replay_of, stable_replay_id
from app.streams.retry_topics import ATTEMPT, attempt_of, next_try, retry_topic


def _config(durability: dict) -> ProjectConfig:
    return ProjectConfig.model_validate({"durability": durability})


def test_checkpoints_are_on_unless_the_project_or_the_agent_turns_them_off() -> None:
    assert _config({}).durability.checkpoints_for("any")
    config = _config({"agents": {"quick": {"checkpoints": False}}}).durability
    assert not config.checkpoints_for("quick") and config.checkpoints_for("other")
    config = _config({"checkpoints": False, "agents": {"precious": {"checkpoints": True}}}).durability
    assert config.checkpoints_for("precious") and not config.checkpoints_for("other")


def test_retry_delays_must_be_positive_seconds() -> None:
    with pytest.raises(ValidationError, match="above 0"):
        _config({"agents": {"a": {"retry_delays": [60, 0]}}})


def test_a_run_is_tried_once_per_delay_then_no_more() -> None:
    request = RunRequest.new("a", {"message": "x"})
    delays = (60.0, 600.0)
    first = next_try(request, delays, ErrorCategory.LLM_UNAVAILABLE, "503", "agent.a.requests", None)
    assert first is not None and first[0] == 60.0
    again = first[1].request
    assert again.run_id == request.run_id and attempt_of(again) == 2
    assert again.trigger.metadata["last_error"] == "llm_unavailable"
    second = next_try(again, delays, ErrorCategory.RATE_LIMIT, "429", "agent.a.requests", None)
    assert second is not None and second[0] == 600.0 and attempt_of(second[1].request) == 3
    assert next_try(second[1].request, delays, ErrorCategory.RATE_LIMIT, "429", "agent.a.requests", None) is None
    assert ATTEMPT not in request.trigger.metadata  # the original is untouched
    assert retry_topic(TopicNames("p."), 600.0) == "p.runs.retry.600s"


def test_a_replay_is_a_new_run_linked_to_the_original() -> None:
    original = RunRequest.new("a", {"message": "x"}, tenant="acme", context={"k": 1}, deployment="v1")
    replay = replay_of(original, deployment="v2")
    assert replay.run_id != original.run_id and replay.deployment == "v2"
    assert (replay.agent, replay.input, replay.tenant, replay.context) == ("a", {"message": "x"}, "acme", {"k": 1})
    assert replay.trigger.source == "replay"
    assert replay.trigger.metadata["replay_of"] == original.run_id
    assert replay.trigger.metadata["original_deployment"] == "v1"
    assert stable_replay_id(original.run_id, "v2") == stable_replay_id(original.run_id, "v2")
    assert stable_replay_id(original.run_id, "v2") != stable_replay_id(original.run_id, None)


def test_the_checkpoint_store_forgets_a_step_on_its_tombstone() -> None:
    store = CheckpointStore("unused:9092", TopicNames("t."), Outbox("unused:9092", TopicNames("t.")))
    record = lambda key, value: SimpleNamespace(key=key.encode(), value=value)  # noqa: E731
    store._take([record("run-1\x00llm.1", b"{}"), record("run-1\x00tool.1.c", b"{}"), record("run-2\x00llm.1", b"{}")])
    assert sorted(store.steps_of("run-1")) == ["llm.1", "tool.1.c"] and store.runs == 2
    store._take([record("run-1\x00llm.1", None), record("run-1\x00tool.1.c", None)])
    assert store.steps_of("run-1") == {} and store.runs == 1
    assert 0 <= checkpoint_partition("run-1", 12) < 12
