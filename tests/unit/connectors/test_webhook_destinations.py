from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from app.connectors.webhook import WebhookSettings
from app.connectors.webhook.config import Destinations
from app.contracts import RunRequest, RunResult, RunStatus
from app.project.config import ProjectConfig
from app.project.connectors import WebhookConnectorSpec


def _result(agent: str, callback_url: str | None) -> RunResult:
    request = RunRequest.new(agent, {"q": 1}, callback_url=callback_url)
    now = datetime.now(UTC)
    return RunResult.for_request(request, RunStatus.COMPLETED, started_at=now, ended_at=now)


def _spec(name: str, **keys: object) -> WebhookConnectorSpec:
    return WebhookConnectorSpec.model_validate({"type": "webhook", "name": name, "url": "https://x.test/h", **keys})


def test_a_result_carries_its_requests_callback_url() -> None:
    assert _result("echo", "https://example.com/hook").callback_url == "https://example.com/hook"
    assert _result("echo", None).callback_url is None


def test_destinations_are_the_callback_and_the_matching_connectors() -> None:
    config = ProjectConfig.model_validate({"webhooks": {"secret_env": "CB_SECRET"}})
    specs = [
        _spec("all", secret_env="ALL_SECRET", retries=2),
        _spec("invoices-only", agents=["invoice"]),
        _spec("traces", topics=["runs.traces"]),
    ]
    destinations = Destinations(config, specs, WebhookSettings())
    found = destinations.for_result(_result("echo", "https://example.com/hook"))
    assert [d.identity for d in found] == ["callback:https://example.com/hook", "connector:all"]
    callback, connector = found
    assert callback.guarded and callback.secret_env == "CB_SECRET"
    assert not connector.guarded and connector.secret_env == "ALL_SECRET" and connector.retry.max_attempts == 3
    assert [d.identity for d in destinations.for_result(_result("invoice", None))] == [
        "connector:all",
        "connector:invoices-only",
    ]
    assert destinations.ignored == ["traces"]
    assert destinations.by_identity("connector:gone", "https://x.test/h") is None


def test_connector_urls_expand_env_placeholders_at_delivery() -> None:
    spec = _spec("env", url="${HOOK_BASE}/ferry")
    [destination] = Destinations(ProjectConfig(), [spec], WebhookSettings()).for_result(_result("echo", None))
    assert destination.expanded_url({"HOOK_BASE": "https://h.test"}) == "https://h.test/ferry"
    with pytest.raises(KeyError):
        destination.expanded_url({})


def test_ferry_yaml_allow_private_takes_networks_only() -> None:
    config = ProjectConfig.model_validate({"webhooks": {"allow_private": ["127.0.0.1/32", "::1/128", "10.0.0.0/8"]}})
    assert Destinations(config, [], WebhookSettings()).allowed
    with pytest.raises(ValidationError, match="not a network"):
        ProjectConfig.model_validate({"webhooks": {"allow_private": ["localhost"]}})
    assert ProjectConfig().webhooks.allow_private == ()
    assert ProjectConfig().webhooks.secret_env == "FERRY_WEBHOOK_SECRET"
