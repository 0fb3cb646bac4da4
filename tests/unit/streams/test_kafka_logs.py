"""aiokafka's harmless start-up errors are lowered; every other aiokafka error stays an error."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from aiokafka.errors import GroupCoordinatorNotAvailableError, NodeNotReadyError

from app.streams.kafka_logs import COORDINATOR_GRACE_S, CoordinatorStartupFilter, install_kafka_log_filters

COORDINATOR = "aiokafka.consumer.group_coordinator"


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def shown() -> Iterator[list[logging.LogRecord]]:
    """Records that reach a WARNING-level handler (what `ferry worker` prints) of the coordinator's logger."""
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger(COORDINATOR)
    handler = Collect(level=logging.NOTSET)
    saved = (logger.level, logger.propagate, list(logger.filters))
    logger.filters[:] = []  # only the filter under test (a CLI test may have installed Ferry's)
    logger.setLevel(logging.WARNING)
    logger.propagate = False
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]
        logger.filters[:] = saved[2]


def _log_like_aiokafka(error: Exception) -> None:
    # aiokafka/consumer/group_coordinator.py: log.error("Group Coordinator Request failed: %s", err)
    logging.getLogger(COORDINATOR).error("Group Coordinator Request failed: %s", error)


def test_the_coordinator_not_yet_available_at_start_is_not_an_error(shown: list[logging.LogRecord]) -> None:
    clock = _Clock()
    logging.getLogger(COORDINATOR).addFilter(CoordinatorStartupFilter(clock))
    _log_like_aiokafka(GroupCoordinatorNotAvailableError())
    clock.now += 1.0
    _log_like_aiokafka(GroupCoordinatorNotAvailableError())
    assert shown == []
    # Still unavailable long after start: worth a warning (the cluster is unwell), never an error.
    clock.now += COORDINATOR_GRACE_S
    _log_like_aiokafka(GroupCoordinatorNotAvailableError())
    assert [(r.levelname, r.getMessage()) for r in shown] == [
        ("WARNING", f"Group Coordinator Request failed: {GroupCoordinatorNotAvailableError()}")
    ]


def test_other_coordinator_errors_stay_errors(shown: list[logging.LogRecord]) -> None:
    logging.getLogger(COORDINATOR).addFilter(CoordinatorStartupFilter(_Clock()))
    _log_like_aiokafka(NodeNotReadyError())
    logging.getLogger(COORDINATOR).error("something else broke")
    assert [r.levelname for r in shown] == ["ERROR", "ERROR"]


def test_installing_twice_adds_each_filter_once() -> None:
    logger = logging.getLogger(COORDINATOR)
    saved = list(logger.filters)
    try:
        install_kafka_log_filters()
        install_kafka_log_filters()
        assert sum(isinstance(f, CoordinatorStartupFilter) for f in logger.filters) == 1
    finally:
        logger.filters[:] = saved
