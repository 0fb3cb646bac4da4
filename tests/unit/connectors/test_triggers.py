"""Trigger decisions without services: which cron ticks fire, which listed objects start, what an S3 event says."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from app.connectors.triggers import StoredObject, created_objects
from app.connectors.triggers.s3_poll import PollCursor, advanced, new_objects
from app.connectors.triggers.schedule import due_ticks, tick_request
from app.project import load_project
from app.project.connectors import S3ConnectorSpec, ScheduleConnectorSpec
from app.project.problems import ProjectError

T0 = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)


def _schedule(cron: str, **fields: object) -> ScheduleConnectorSpec:
    return ScheduleConnectorSpec.model_validate(
        {"type": "schedule", "name": "nightly", "agent": "a", "cron": cron, **fields}
    )


def test_a_seconds_cron_fires_each_tick_once_in_order() -> None:
    spec = _schedule("*/10 * * * * *")
    fire, last = due_ticks(spec, T0, T0 + timedelta(seconds=35))
    assert fire == [T0 + timedelta(seconds=s) for s in (10, 20, 30)]
    assert last == T0 + timedelta(seconds=30)
    again, _ = due_ticks(spec, last, T0 + timedelta(seconds=39))
    assert again == []  # nothing twice


def test_ticks_missed_in_an_outage_are_skipped_or_caught_up_by_policy() -> None:
    now = T0 + timedelta(minutes=10, seconds=30)
    skip, last = due_ticks(_schedule("* * * * *"), T0, now)
    assert skip == [T0 + timedelta(minutes=10)]  # only the tick within the late-fire window
    assert last == T0 + timedelta(minutes=10)
    catch_up, _ = due_ticks(_schedule("* * * * *", missed="catch_up", max_catch_up=3), T0, now)
    assert catch_up == [T0 + timedelta(minutes=m) for m in (8, 9, 10)]  # the most recent three, oldest first


def test_a_tick_is_one_run_id_however_often_it_is_sent() -> None:
    spec = _schedule("0 3 * * *", payload={"report": "daily"})
    first, second = tick_request(spec, T0), tick_request(spec, T0)
    assert first.run_id == second.run_id != tick_request(spec, T0 + timedelta(days=1)).run_id
    assert first.input == {"report": "daily", "_schedule": {"name": "nightly", "tick": T0.isoformat()}}
    assert first.trigger.source == "schedule"


def _object(key: str, at: datetime, etag: str = "e1") -> StoredObject:
    return StoredObject(bucket="b", key=key, etag=etag, size=10, last_modified=at)


def test_polling_starts_each_object_once_including_a_late_upload_under_a_smaller_key() -> None:
    cursor = PollCursor()
    listing = [_object("inv/b.pdf", T0), _object("inv/c.pdf", T0 + timedelta(seconds=5))]
    assert [o.key for o in new_objects(listing, cursor)] == ["inv/b.pdf", "inv/c.pdf"]
    cursor = advanced(cursor, listing, listing, late_s=300)
    assert new_objects(listing, cursor) == []  # listed again: nothing new
    # a large upload that began before c.pdf's shows up now, under a key that sorts first
    late = _object("inv/a.pdf", T0 + timedelta(seconds=2))
    listing = [late, *listing]
    assert new_objects(listing, cursor) == [late]
    cursor = advanced(cursor, [late], listing, late_s=300)
    assert new_objects(listing, cursor) == []
    replaced = _object("inv/b.pdf", T0 + timedelta(seconds=9), etag="e2")  # same key, new content
    assert new_objects([replaced], cursor) == [replaced]


def test_the_cursor_forgets_what_falls_behind_its_watermark() -> None:
    old = [_object(f"k{i}", T0 + timedelta(seconds=i)) for i in range(5)]
    cursor = advanced(PollCursor(), old, old, late_s=0)
    assert cursor.watermark == T0 + timedelta(seconds=4)
    assert list(cursor.recent) == []  # everything is at or behind the watermark: the watermark remembers it
    assert new_objects(old, cursor) == []
    restored = PollCursor.of(json.loads(json.dumps(cursor.saved())))
    assert restored == cursor


def test_an_s3_created_event_names_its_objects_and_other_events_name_none() -> None:
    event = {
        "Records": [
            {
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "bucket": {"name": "invoices"},
                    "object": {"key": "in/ACME+May+2026.pdf", "size": 7, "eTag": "abc"},
                },
            },
            {"eventName": "ObjectRemoved:Delete", "s3": {"bucket": {"name": "invoices"}, "object": {"key": "x.pdf"}}},
        ]
    }
    assert list(created_objects(json.dumps(event).encode())) == [
        StoredObject(bucket="invoices", key="in/ACME May 2026.pdf", etag="abc", size=7)
    ]
    assert list(created_objects(b"not json")) == []
    assert list(created_objects(b'{"Records": "nope"}')) == []


def test_a_trigger_wants_its_prefix_and_suffixes_only() -> None:
    spec = S3ConnectorSpec.model_validate(
        {"type": "s3", "name": "up", "agent": "a", "bucket": "invoices", "prefix": "in/", "suffixes": [".pdf", ".PNG"],
         "mode": "poll"}
    )  # fmt: skip
    assert spec.wants("in/a.pdf") and spec.wants("in/sub/b.png")
    assert not spec.wants("out/a.pdf") and not spec.wants("in/a.txt") and not spec.wants("in/folder/")


def _project_with(tmp_path: Path, connector: dict[str, object]) -> Path:
    (tmp_path / "agents").mkdir()
    agent = {"version": "1.0", "name": "a", "description": "d", "model": "openai/x", "system_prompt": "p"}
    (tmp_path / "agents" / "a.yaml").write_text(yaml.safe_dump(agent))
    (tmp_path / "connectors").mkdir()
    (tmp_path / "connectors" / "trigger.yaml").write_text(yaml.safe_dump(connector, sort_keys=False))
    return tmp_path


@pytest.mark.parametrize(
    ("connector", "message"),
    [
        ({"type": "schedule", "name": "n", "agent": "a", "cron": "every day at 3"}, "not a cron expression"),
        ({"type": "schedule", "name": "n", "agent": "b", "cron": "0 3 * * *"}, "no agent named 'b'"),
        ({"type": "s3", "name": "n", "agent": "a", "bucket": "invoices"}, "needs `events_topic`"),
    ],
)
def test_a_bad_trigger_is_reported_with_its_file_and_line(
    tmp_path: Path, connector: dict[str, object], message: str
) -> None:
    with pytest.raises(ProjectError) as raised:
        load_project(_project_with(tmp_path, connector))
    text = str(raised.value)
    assert "connectors/trigger.yaml:" in text and message in text, text
