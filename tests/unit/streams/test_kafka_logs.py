"""aiokafka's harmless start-up errors are lowered; every other aiokafka error stays an error."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from aiokafka.errors import GroupCoordinatorNotAvailableError, NodeNotReadyError

from app.streams.kafka_logs import (
    COORDINATOR_GRACE_S,
    CoordinatorStartupFilter,
    OutageLogLimiter,
    install_kafka_log_filters,
)

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
    loggers = [logging.getLogger(name) for name in ("aiokafka", "aiokafka.producer.sender", COORDINATOR)]
    saved = [list(logger.filters) for logger in loggers]
    try:
        install_kafka_log_filters()
        install_kafka_log_filters()
        coordinator = loggers[-1]
        assert sum(isinstance(f, CoordinatorStartupFilter) for f in coordinator.filters) == 1
        for logger in loggers:
            assert sum(isinstance(f, OutageLogLimiter) for f in logger.filters) == 1
    finally:
        for logger, filters in zip(loggers, saved, strict=True):
            logger.filters[:] = filters


class _Report(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def report() -> Iterator[tuple[logging.Logger, _Report]]:
    logger = logging.getLogger("test.ferry.kafka")
    handler = _Report()
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield logger, handler
    finally:
        logger.removeHandler(handler)


def _unreachable() -> logging.LogRecord:
    # aiokafka/client.py: log.error("Unable connect to node with id %s: %s", node_id, err)
    error = ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 9092)")
    return logging.LogRecord(
        "aiokafka", logging.ERROR, __file__, 1, "Unable connect to node with id %s: %s", (1, error), None
    )


def _no_metadata() -> logging.LogRecord:
    return logging.LogRecord("aiokafka", logging.ERROR, __file__, 1, "Unable to update metadata from %s", ([1],), None)


def test_a_broker_outage_logs_one_line_per_cause_per_interval_then_a_summary(
    report: tuple[logging.Logger, _Report],
) -> None:
    logger, handler = report
    clock = _Clock()
    limiter = OutageLogLimiter(interval_s=30, quiet_s=10, clock=clock, report=logger, watch=False)
    passed: list[str] = []
    for _ in range(150):  # 15 s of retries every 100 ms, two causes each time
        for record in (_unreachable(), _no_metadata()):
            if limiter.filter(record):
                passed.append(record.getMessage())
        clock.now += 0.1
    assert passed == [
        "Unable connect to node with id 1: [Errno 111] Connect call failed ('127.0.0.1', 9092)",
        "Unable to update metadata from [1]",
    ]
    assert len(handler.lines) == 1 and handler.lines[0].startswith("Kafka broker unreachable: Unable connect")
    assert not limiter.settle()  # errors came a moment ago: not over yet
    clock.now += 30  # a cause still failing after the interval shows again, with what it folded
    record = _no_metadata()
    assert limiter.filter(record)
    assert record.getMessage() == "Unable to update metadata from [1] (and 149 more like it in the last 30s)"
    clock.now += 10  # then silence: the broker answers again
    assert limiter.settle()
    summary = handler.lines[-1]
    assert "lasted 45s" in summary and "folded 301 error lines" in summary, summary
    assert "150 × aiokafka: Unable connect to node with id …: …" in summary, summary
    # A new outage starts afresh: its first line shows again.
    assert limiter.filter(_unreachable())


def test_repeated_errors_that_are_no_outage_are_folded_without_an_outage_line(
    report: tuple[logging.Logger, _Report],
) -> None:
    logger, handler = report
    clock = _Clock()
    limiter = OutageLogLimiter(interval_s=30, clock=clock, report=logger, watch=False)

    def coordinator_moved() -> logging.LogRecord:
        return logging.LogRecord(COORDINATOR, logging.WARNING, __file__, 1, "Marking the coordinator dead", (), None)

    assert [limiter.filter(coordinator_moved()) for _ in range(3)] == [True, False, False]
    assert handler.lines == []
    assert limiter.settle()  # nothing to summarise
    info = logging.LogRecord(COORDINATOR, logging.INFO, __file__, 1, "Marking the coordinator dead", (), None)
    assert limiter.filter(info)  # below WARNING: never held back
