"""Which Kafka a command talks to: `--broker`, else `$FERRY_BROKER`, else the dev stack's.

Every command that needs the broker (worker, submit, topics apply, demo) asks
`require_broker`: no broker configured, or an address that is no `host:port` list, is
a `ConfigError` (one line, exit 2). Whether the broker answers is checked where the
first client connects (`app.streams.connect`): `ServiceUnreachableError`, also exit 2.
"""

from __future__ import annotations

import re

from app.contracts.errors import ConfigError

_HOST_PORT = re.compile(r"^\[?[\w.\-:]+\]?:\d{1,5}$")


def broker_address(explicit: str | None = None) -> str | None:
    """The configured bootstrap servers, or None when there are none."""
    from app.streams.settings import default_broker

    if explicit:
        return explicit.removeprefix("kafka://")
    configured = default_broker()
    if configured:
        return configured
    from app.devstack.stack import DevStack, default_home  # a developer's machine: its dev stack

    kafka = DevStack(default_home()).running().get("kafka")
    return kafka.address if kafka else None


def require_broker(explicit: str | None = None) -> str:
    """The bootstrap servers to use; `ConfigError` saying how to configure them otherwise."""
    address = broker_address(explicit)
    if address is None:
        from app.devstack.stack import default_home, home_origin

        raise ConfigError(
            f"no Kafka broker: no --broker, FERRY_BROKER unset, no dev stack running in {default_home()} "
            f"({home_origin()}) — fix: pass --broker HOST:PORT, set FERRY_BROKER, or run `ferry dev up` "
            "(for a stack started with --home DIR: FERRY_HOME=DIR)"
        )
    bad = [part for part in address.split(",") if not _HOST_PORT.match(part.strip())]
    if bad:
        raise ConfigError(f"broker address {bad[0]!r} is not HOST:PORT — fix: e.g. --broker 127.0.0.1:9092")
    return address
