"""Real services for integration tests, started once per session and only when needed.

The broker comes from the project's own dev stack (Kafka jars from Maven Central), unless
FERRY_BROKER points at an existing cluster. PostgreSQL and Kafka Connect start only when a
test asks for them; everything started here is stopped at the end of the session.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.devstack.service import ServiceInfo
from app.devstack.stack import DevStack

logging.getLogger("aiokafka").setLevel(logging.CRITICAL)


@pytest.fixture(scope="session")
def dev_stack() -> Iterator[DevStack]:
    # `make test` names the folder so it can stop the stack even if pytest is killed.
    # Under /tmp with o+x so that PostgreSQL, run as the `postgres` user, can reach it.
    configured = os.environ.get("FERRY_TEST_STACK_HOME")
    home = Path(configured) if configured else Path(tempfile.mkdtemp(prefix="ferry-test-stack-"))
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o755)
    stack = DevStack(home)
    try:
        yield stack
    finally:
        stack.down()


@pytest.fixture(scope="session")
def kafka_bootstrap(dev_stack: DevStack) -> str:
    external = os.environ.get("FERRY_BROKER")
    if external:
        return external.removeprefix("kafka://")
    return dev_stack.up(["kafka"])["kafka"].address


@pytest.fixture(scope="session")
def postgres(dev_stack: DevStack) -> ServiceInfo:
    return dev_stack.up(["postgres"])["postgres"]


@pytest.fixture(scope="session")
def kafka_connect(dev_stack: DevStack, kafka_bootstrap: str) -> ServiceInfo:
    return dev_stack.up(["kafka", "connect"])["connect"]
