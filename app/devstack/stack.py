"""The local stack as one unit: start order, recorded state, status and tear-down.

State lives in `<home>/state.json` (home: `--home`, `$FERRY_HOME`, else `.ferry/dev` in the
current directory), so `ferry dev status` and `ferry dev down` work from any later shell.
A command that finds no running service says which home it searched (and `home_origin`,
why): a stack started with `--home X` is invisible from elsewhere without it.
Start order is Kafka → PostgreSQL → Connect (Connect needs the broker); tear-down is the
reverse. A service whose start fails stops everything this call started.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

from pydantic import BaseModel

from app.devstack.connect import start_connect, stop_connect
from app.devstack.errors import DevStackError
from app.devstack.kafka import start_kafka, stop_kafka
from app.devstack.postgres import start_postgres, stop_postgres
from app.devstack.process import is_alive
from app.devstack.service import ServiceInfo

SERVICES: tuple[str, ...] = ("kafka", "postgres", "connect")
_STOPPERS: dict[str, Callable[[ServiceInfo], None]] = {
    "kafka": stop_kafka,
    "postgres": stop_postgres,
    "connect": stop_connect,
}


class StackState(BaseModel):
    services: dict[str, ServiceInfo] = {}


class PortRequest(BaseModel):
    kafka: int | None = None
    postgres: int | None = None
    connect: int | None = None


HOME_ENV = "FERRY_HOME"


def default_home() -> Path:
    return Path(os.environ.get(HOME_ENV) or Path.cwd() / ".ferry" / "dev")


def resolve_home(explicit: str | Path | None = None) -> Path:
    """`--home` when given, else `$FERRY_HOME`, else `.ferry/dev` in the current directory."""
    return Path(explicit) if explicit else default_home()


def home_origin(explicit: str | Path | None = None) -> str:
    """Why this home was searched, in the words of the option or variable that chose it."""
    if explicit:
        return "--home"
    if os.environ.get(HOME_ENV):
        return HOME_ENV
    return "the default: no --home, no $FERRY_HOME"


def start_timeout() -> float:
    return float(os.environ.get("FERRY_DEV_START_TIMEOUT", "120"))


class DevStack:
    def __init__(self, home: Path) -> None:
        self.home = home.resolve()
        self.logs = self.home / "logs"
        self._state_path = self.home / "state.json"

    def state(self) -> StackState:
        if not self._state_path.exists():
            return StackState()
        return StackState.model_validate_json(self._state_path.read_text())

    def _save(self, state: StackState) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        tmp = self._state_path.with_suffix(".tmp")
        tmp.write_text(state.model_dump_json(indent=2))
        tmp.replace(self._state_path)

    def running(self) -> dict[str, ServiceInfo]:
        return {name: info for name, info in self.state().services.items() if is_alive(info.pid)}

    def up(
        self,
        services: Iterable[str] = SERVICES,
        ports: PortRequest | None = None,
        progress: Callable[[str], None] = lambda _: None,
    ) -> dict[str, ServiceInfo]:
        wanted = [name for name in SERVICES if name in set(services)]
        ports = ports or PortRequest()
        state = self.state()
        state.services = self.running()  # forget services that died since
        started: list[str] = []
        try:
            for name in wanted:
                if name in state.services:
                    progress(f"{name} already running at {state.services[name].address}")
                    continue
                progress(f"starting {name}…")
                state.services[name] = self._start(name, state, ports)
                started.append(name)
                self._save(state)
                progress(f"{name} ready at {state.services[name].address}")
        except BaseException:
            for name in reversed(started):
                _STOPPERS[name](state.services.pop(name))
            self._save(state)
            raise
        return state.services

    def _start(self, name: str, state: StackState, ports: PortRequest) -> ServiceInfo:
        timeout = start_timeout()
        if name == "kafka":
            return start_kafka(self.home / "kafka", self.logs, port=ports.kafka, timeout=timeout)
        if name == "postgres":
            return start_postgres(self.home / "postgres", self.logs, port=ports.postgres, timeout=timeout)
        kafka = state.services.get("kafka")
        if kafka is None:
            raise DevStackError("Kafka Connect needs the broker", "start kafka too: ferry dev up")
        return start_connect(kafka.address, self.home / "connect", self.logs, port=ports.connect, timeout=timeout)

    def down(self, progress: Callable[[str], None] = lambda _: None) -> None:
        state = self.state()
        for name in reversed(SERVICES):
            info = state.services.pop(name, None)
            if info is None:
                continue
            progress(f"stopping {name} (pid {info.pid})…")
            _STOPPERS[name](info)
            self._save(state)
