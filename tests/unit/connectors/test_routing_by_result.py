"""`when:` on feeds and webhook connectors: one pipeline's results routed by their output.

The example project sends an invoice that needs review to the review topic and webhook,
and one that does not to the ready webhook; both have their row in `invoices`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from app.connectors.sinks import feed_record, feeds_of, value_schema
from app.connectors.webhook import WebhookSettings
from app.connectors.webhook.config import Destinations
from app.contracts import RunResult, RunStatus
from app.project import load_project
from app.project.connectors import FeedSpec, WebhookConnectorSpec, result_matches
from app.streams import TopicNames

ROOT = Path(__file__).resolve().parents[3]


def _invoice_result(
    needs_review: bool, status: RunStatus = RunStatus.COMPLETED, agent: str = "invoice-pipeline"
) -> RunResult:
    now = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
    output: dict[str, Any] = {
        "record_key": "k1", "vendor": "Acme", "invoice_number": "A-1", "total": "12.00", "needs_review": needs_review,
        "confidence": 0.62 if needs_review else 0.97, "unsure_fields": ["total"] if needs_review else [],
        "field_confidences": {"total": 0.4 if needs_review else 0.97},
        "review_reasons": ["unsure: total"] if needs_review else [],
    }  # fmt: skip
    return RunResult.model_validate(
        {
            "run_id": "r1",
            "agent": agent,
            "status": status,
            "started_at": now,
            "ended_at": now,
            "duration_ms": 3.0,
            "output": output,
        }
    )


def test_result_matches_every_path_by_value_and_type() -> None:
    data = {"status": "completed", "output": {"needs_review": True, "n": 1}}
    assert result_matches({}, data)
    assert result_matches({"status": "completed", "output.needs_review": True}, data)
    assert not result_matches({"output.needs_review": False}, data)
    assert not result_matches({"output.n": True}, data)  # 1 is not true
    assert result_matches({"output.missing": None}, data)  # a missing path holds null
    assert not result_matches({"output.needs_review.deeper": True}, data)


@pytest.mark.parametrize(
    "when",
    [{"output.x": [1, 2]}, {"output.x": {"a": 1}}, {"output..x": 1}, {"": 1}],
    ids=["list", "map", "empty-part", "empty"],
)
def test_a_when_that_is_not_path_to_value_is_refused_at_load(when: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="when"):
        FeedSpec.model_validate({"when": when, "columns": {"run_id": "run_id"}})
    with pytest.raises(ValidationError, match="when"):
        WebhookConnectorSpec.model_validate({"type": "webhook", "name": "h", "url": "https://x.test", "when": when})


def _fed_topics(result: RunResult) -> dict[str, dict[str, Any]]:
    project = load_project(ROOT)
    fed = {}
    for feed in feeds_of(project, TopicNames()):
        made = feed_record(feed.spec, value_schema(feed.spec, feed.connector), result)
        if made is not None:
            fed[feed.topic] = json.loads(made[1])["payload"]
    return fed


def test_the_example_feeds_every_invoice_to_its_table_and_those_needing_review_to_the_review_topic() -> None:
    sure = _fed_topics(_invoice_result(needs_review=False))
    assert set(sure) == {"sink.runs", "sink.invoices"}
    assert sure["sink.invoices"]["needs_review"] is False and sure["sink.invoices"]["confidence"] == 0.97
    assert json.loads(sure["sink.invoices"]["field_confidences"]) == {"total": 0.97}

    unsure = _fed_topics(_invoice_result(needs_review=True))
    assert set(unsure) == {"sink.runs", "sink.invoices", "sink.invoices.review"}
    review = unsure["sink.invoices.review"]
    assert review["record_key"] == "k1" and json.loads(review["unsure_fields"]) == ["total"]
    assert json.loads(review["review_reasons"]) == ["unsure: total"] and review["confidence"] == 0.62
    assert unsure["sink.invoices"]["needs_review"] is True

    failed = _fed_topics(_invoice_result(needs_review=True, status=RunStatus.FAILED))
    assert set(failed) == {"sink.runs"}


def test_the_example_announces_a_sure_invoice_and_a_doubtful_one_to_different_webhooks() -> None:
    project = load_project(ROOT)
    hooks = [spec for spec in project.connectors.values() if isinstance(spec, WebhookConnectorSpec)]
    destinations = Destinations(project.config, hooks, WebhookSettings())

    def receivers(result: RunResult) -> list[str]:
        return [d.identity for d in destinations.for_result(result)]

    assert receivers(_invoice_result(needs_review=False)) == ["connector:invoice-ready"]
    assert receivers(_invoice_result(needs_review=True)) == ["connector:invoice-review"]
    assert receivers(_invoice_result(needs_review=False, status=RunStatus.FAILED)) == []
    assert receivers(_invoice_result(needs_review=False, agent="resilient-agent")) == []
    for spec in hooks:
        assert spec.secret_env is not None  # every announcement is signed
