"""Poison inputs go to the DLQ with their reason and bytes; valid runs around them complete."""

from __future__ import annotations

import base64
import json

from app.contracts import RunRequest, RunStatus
from app.devstack.llm_sim import LLMSimulator
from app.streams import DeadLetter, ResultWatcher, Submitter, TopicNames
from tests.integration.kafka_helpers import collect
from tests.integration.streams.conftest import WorkerFactory, llm_agent, write_project

MAX_BYTES = 4096


def _request(**overrides: object) -> bytes:
    data = json.loads(RunRequest.new("echo", {"message": "x"}).model_dump_json())
    data.update(overrides)
    return json.dumps(data).encode()


def _without(field: str) -> bytes:
    data = json.loads(_request())
    del data[field]
    return json.dumps(data).encode()


# (label, value, a fragment the DLQ reason must contain)
POISON: list[tuple[str, bytes | None, str]] = [
    ("invalid json", b'{"run_id": "x", ', "invalid JSON"),
    ("json array", b"[1, 2, 3]", "got list"),
    ("json string", b'"run the echo agent"', "got str"),
    ("json null", b"null", "got NoneType"),
    ("json number", b"42", "got int"),
    ("missing run_id", _without("run_id"), "run_id: Field required"),
    ("missing agent", _without("agent"), "agent: Field required"),
    ("missing input", _without("input"), "input: Field required"),
    # (An input that is no object is wrapped as {"message": …}, not poison: test_one_process_or_many.)
    ("context is a list", _request(context=["a", "b"]), "context: Input should be a valid dictionary"),
    ("run_id is a number", _request(run_id=12345), "run_id: Input should be a valid string"),
    ("unknown agent", _request(agent="no-such-agent"), "unknown agent 'no-such-agent'"),
    ("another agent's request", _request(agent="other"), "unknown agent 'other' on this topic"),
    ("oversize", _request(input={"message": "x" * (MAX_BYTES + 10)}), "oversize"),
    ("tombstone", None, "tombstone"),
    ("invalid utf-8", b'{"run_id": "\xff\xfe"}', "invalid UTF-8"),
    ("empty value", b"", "empty value"),
    ("unknown schema version", _request(schema_version=2), "schema_version"),
    ("tenant is an object", _request(tenant={"id": 1}), "tenant: Input should be a valid string"),
    ("created_at not a date", _request(created_at="yesterday"), "created_at"),
    (
        "negative pipeline stage",
        _request(pipeline={"pipeline": "p", "stage": -1, "root_run_id": "r"}),
        "pipeline.stage",
    ),
    ("nested too deeply", b'{"input": ' + b"[" * 2000 + b"]" * 2000 + b"}", "invalid"),
    ("utf-8 BOM", b"\xef\xbb\xbf" + _request(), "invalid JSON"),
]


async def test_poison_records_land_in_the_dlq_and_valid_runs_continue(
    tmp_path, kafka_bootstrap: str, simulator: LLMSimulator, make_worker: WorkerFactory, names: TopicNames
) -> None:
    project = write_project(tmp_path, {"echo": llm_agent(max_concurrent_runs=4), "other": llm_agent()})
    worker = make_worker(project, simulator.base_url, agents=("echo",), max_request_bytes=MAX_BYTES)
    await worker.start()
    valid = [RunRequest.new("echo", {"message": f"ok {i}"}) for i in range(len(POISON) + 1)]
    topic = names.request("echo")
    async with ResultWatcher(kafka_bootstrap, names) as watcher, Submitter(kafka_bootstrap, project, names) as sub:
        for index, (label, value, _) in enumerate(POISON):
            await sub.submit(valid[index])
            await sub.send_raw(topic, value, key=label.encode())
        await sub.submit(valid[-1])
        results = await watcher.wait_for([r.run_id for r in valid], timeout=60)
    letters = [DeadLetter.model_validate_json(v) for v in await collect(kafka_bootstrap, names.dlq, len(POISON), 30)]

    assert len(results) == len(valid)
    assert {r.status for r in results.values()} == {RunStatus.COMPLETED}
    by_label = {base64.b64decode(letter.key_b64 or "").decode(): letter for letter in letters}
    assert sorted(by_label) == sorted(label for label, _, _ in POISON)
    for label, value, fragment in POISON:
        letter = by_label[label]
        assert letter.category == "bad_input"
        assert fragment in letter.reason, f"{label}: {letter.reason!r}"
        assert letter.original_value() == value, label
        assert letter.topic == topic
    assert len(POISON) >= 15
