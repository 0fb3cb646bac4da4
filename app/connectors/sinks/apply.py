"""`ferry connectors apply`: the project's Kafka Connect connectors, registered through Connect's REST API.

`PUT /connectors/{name}/config` creates a connector or replaces its config, so applying
twice changes nothing. `${ENV}` placeholders in a config are filled from the environment
here, at apply time (a password never sits in the repo), and all of them must be set
before anything is sent. Connect's own config providers (`${file:…}`) are left alone.
A fed connector's topic carries the deployment's topic prefix, as Ferry produces it.
After the PUTs, each connector's state is polled until it and its tasks settle
(RUNNING, or FAILED with the first line of the trace).
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from app.contracts.errors import ConfigError, ServiceUnreachableError
from app.project.connectors import KafkaConnectSpec
from app.streams.naming import TopicNames

CONNECT_FIX = "start it with `ferry dev up`, or pass --connect-url / set FERRY_CONNECT_URL to a running Connect"
_PLACEHOLDER = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)\}")
_SETTLED = {"RUNNING", "FAILED", "PAUSED", "STOPPED"}


@dataclass(frozen=True)
class ConnectorState:
    name: str
    state: str  # RUNNING | FAILED | PAUSED | REJECTED (Connect refused the config) | UNASSIGNED …
    tasks_running: int = 0
    tasks: int = 0
    reason: str = ""  # the trace's (or Connect's answer's) first line when not RUNNING

    @property
    def ok(self) -> bool:
        return self.state == "RUNNING" and self.tasks_running == self.tasks

    def line(self) -> str:
        if self.state == "RUNNING":
            text = f"{self.name}: RUNNING ({self.tasks_running}/{self.tasks} tasks running)"
        else:
            text = f"{self.name}: {self.state}"
        return f"{text} — {self.reason}" if self.reason else text


def resolved_config(
    spec: KafkaConnectSpec, names: TopicNames, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The config as sent: placeholders filled, a fed topic prefixed. `ConfigError` names a missing variable."""
    env = os.environ if environ is None else environ
    config: dict[str, str] = {}
    for key, value in spec.config.items():
        missing = [name for name in _PLACEHOLDER.findall(value) if name not in env]
        if missing:
            raise ConfigError(f"connector {spec.name}: {key} needs the environment variable {missing[0]} — fix: set it")
        config[key] = _PLACEHOLDER.sub(lambda match: env[match.group(1)], value)
    if spec.feed is not None and names.prefix:
        config["topics"] = ",".join(names.prefix + topic for topic in spec.topics)
    return config


class ConnectClient:
    """Connect's REST API, JSON in and out; one place that turns a refused connection into one error."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.status, _json(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, _json(exc.read())
        except (urllib.error.URLError, OSError) as exc:
            raise ServiceUnreachableError("Kafka Connect", self.url, CONNECT_FIX) from exc

    def put_config(self, name: str, config: Mapping[str, str]) -> str | None:
        """Register or update `name`; None when Connect took it, else its reason."""
        status, answer = self.call("PUT", f"/connectors/{quote(name)}/config", config)
        return None if status < 400 else f"Connect answered {status}: {_message(answer)}"

    def state(self, name: str) -> ConnectorState:
        status, answer = self.call("GET", f"/connectors/{quote(name)}/status")
        if status >= 400 or not isinstance(answer, dict):
            return ConnectorState(name, "UNKNOWN", reason=f"Connect answered {status}: {_message(answer)}")
        connector = answer.get("connector") or {}
        tasks = answer.get("tasks") or []
        failed = [t for t in tasks if t.get("state") == "FAILED"]
        state = str(connector.get("state", "UNKNOWN"))
        trace = connector.get("trace") or (failed[0].get("trace") if failed else None)
        if failed and state == "RUNNING":
            state = "FAILED"
        running = sum(1 for t in tasks if t.get("state") == "RUNNING")
        reason = "" if state == "RUNNING" else _first_line(trace)
        return ConnectorState(name, state, running, len(tasks), reason)


def apply_connectors(
    client: ConnectClient,
    specs: Sequence[KafkaConnectSpec],
    names: TopicNames,
    *,
    wait_s: float = 60.0,
    environ: Mapping[str, str] | None = None,
) -> list[ConnectorState]:
    """PUT every config (after resolving them all), then wait up to `wait_s` for each to settle."""
    configs = [(spec.name, resolved_config(spec, names, environ)) for spec in specs]
    states: dict[str, ConnectorState] = {}
    for name, config in configs:
        refused = client.put_config(name, config)
        if refused is not None:
            states[name] = ConnectorState(name, "REJECTED", reason=refused)
    deadline = time.monotonic() + wait_s
    for name, _ in configs:
        if name in states:
            continue
        state = client.state(name)
        while not _settled(state) and time.monotonic() < deadline:
            time.sleep(0.5)
            state = client.state(name)
        states[name] = state
    return [states[name] for name, _ in configs]


def _settled(state: ConnectorState) -> bool:
    if state.state not in _SETTLED:
        return False
    return state.state != "RUNNING" or (state.tasks > 0 and state.tasks_running == state.tasks)


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode(errors="replace")


def _message(answer: Any) -> str:
    text = answer.get("message", answer) if isinstance(answer, dict) else answer
    return _first_line(str(text)) or "no message"


def _first_line(text: object) -> str:
    return str(text).strip().splitlines()[0][:300] if text else ""
