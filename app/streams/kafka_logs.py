"""aiokafka's log records that are not what their level says, put at the level they deserve.

aiokafka logs some retried, self-healing conditions as ERROR. A user who sees ERROR at
every worker start learns to ignore errors, so each such record is matched precisely
(logger, message, exception type) and lowered; every other aiokafka error stays as it is.

- `GroupCoordinatorNotAvailableError` on the group coordinator lookup: the broker is
  still electing a coordinator for a new consumer group (every first start of an app
  id, and after a broker restart). aiokafka retries it. Lowered to DEBUG while it lasts
  less than `COORDINATOR_GRACE_S`; past that it is a WARNING (something is wrong with
  the cluster), never an ERROR.
- `NotLeaderForPartitionError` on ListOffsets of a just-created topic: retried at once.

And it logs a broker outage once per retry: with the broker gone, every client of a
worker (consumer, fetcher, coordinator, producer) retries every 100 ms and says so, some
3,000 ERROR lines in 15 s. `OutageLogLimiter` keeps the first line of each cause (logger,
message template, exception type) and then one per `interval_s`, the later ones saying
how many were folded; when no aiokafka error has come for `quiet_s` it logs one summary
(how long, how many lines of which cause). Errors that do not repeat pass untouched.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from aiokafka.errors import GroupCoordinatorNotAvailableError

COORDINATOR_GRACE_S = 30.0

_COORDINATOR_LOGGER = "aiokafka.consumer.group_coordinator"
_FETCHER_LOGGER = "aiokafka.consumer.fetcher"
#: Every aiokafka logger that reports a broker it cannot reach (a filter on a logger sees
#: only that logger's own records, not its children's).
_CLIENT_LOGGERS = (
    "aiokafka",
    "aiokafka.conn",
    "aiokafka.cluster",
    "aiokafka.admin.client",
    "aiokafka.consumer.consumer",
    _FETCHER_LOGGER,
    _COORDINATOR_LOGGER,
    "aiokafka.producer.producer",
    "aiokafka.producer.sender",
)
OUTAGE_INTERVAL_S = 30.0
OUTAGE_QUIET_S = 10.0


class CoordinatorStartupFilter(logging.Filter):
    """Lowers aiokafka's "Group Coordinator Request failed: GroupCoordinatorNotAvailableError"."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._clock = clock
        self._first_seen: float | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if not _is_coordinator_not_available(record):
            return True
        now = self._clock()
        if self._first_seen is None:
            self._first_seen = now
        if now - self._first_seen < COORDINATOR_GRACE_S:
            _lower(record, logging.DEBUG)
        else:
            _lower(record, logging.WARNING)
        return logging.getLogger(record.name).isEnabledFor(record.levelno)


class NewTopicLeaderFilter(logging.Filter):
    """Drops the retried ListOffsets `NotLeaderForPartitionError` of a topic just created."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "NotLeaderForPartitionError" not in record.getMessage()


@dataclass
class _Cause:
    passed_at: float  # when a line of this cause was last let through
    folded: int = 0  # lines held back since then


@dataclass
class _Outage:
    started: float
    last_error: float
    wall_start: str
    lines: Counter[str] = field(default_factory=Counter)  # cause → every line, passed or folded


class OutageLogLimiter(logging.Filter):
    """One line per cause per `interval_s` from aiokafka's loggers, and a summary after.

    Called from any thread (faust's consumer has its own): state changes under a lock.
    The summary comes from a daemon thread started with the outage, which ends with it,
    so a process with no outage runs no thread."""

    def __init__(
        self,
        *,
        interval_s: float = OUTAGE_INTERVAL_S,
        quiet_s: float = OUTAGE_QUIET_S,
        clock: Callable[[], float] = time.monotonic,
        report: logging.Logger | None = None,
        watch: bool = True,
    ) -> None:
        super().__init__()
        self.interval_s = interval_s
        self.quiet_s = quiet_s
        self._clock = clock
        self._report = report or logging.getLogger("ferry.kafka")
        self._watch = watch  # tests call `settle` themselves
        self._lock = threading.Lock()
        self._causes: dict[str, _Cause] = {}
        self._outage: _Outage | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        cause = cause_of(record)
        now = self._clock()
        with self._lock:
            starting = self._outage is None and is_connection_error(record)
            if starting:
                self._outage = _Outage(now, now, time.strftime("%H:%M:%S"))
            if self._outage is not None:
                self._outage.last_error = now
                self._outage.lines[cause] += 1
            seen = self._causes.get(cause)
            if seen is None:
                self._causes[cause] = _Cause(passed_at=now)
                folded, passes = 0, True
            elif now - seen.passed_at >= self.interval_s:
                folded, seen.folded, seen.passed_at = seen.folded, 0, now
                passes = True
            else:
                seen.folded += 1
                folded, passes = 0, False
        if starting:
            self._report.warning(
                "Kafka broker unreachable: %s (each Kafka error is logged once per %gs; a summary follows when they stop)",
                record.getMessage(),
                self.interval_s,
            )
            if self._watch:
                threading.Thread(target=self._watch_outage, name="ferry-kafka-outage", daemon=True).start()
        if passes and folded:
            record.msg = f"{record.getMessage()} (and {folded} more like it in the last {self.interval_s:g}s)"
            record.args = ()
        return passes

    def settle(self) -> bool:
        """Log the summary if the last error is `quiet_s` old; whether the outage is over."""
        now = self._clock()
        with self._lock:
            outage = self._outage
            if outage is None:
                return True
            if now - outage.last_error < self.quiet_s:
                return False
            self._outage = None
            self._causes.clear()
        total = sum(outage.lines.values())
        top = "; ".join(f"{count} × {cause}" for cause, count in outage.lines.most_common(4))
        self._report.warning(
            "Kafka errors stopped %.0fs ago (broker reachable again, or no client is trying): the outage "
            "since %s lasted %.0fs and folded %d error lines into %d: %s",
            now - outage.last_error,
            outage.wall_start,
            outage.last_error - outage.started,
            total,
            self._lines_shown(outage),
            top,
        )
        return True

    def _lines_shown(self, outage: _Outage) -> int:
        # At most one per cause per interval (and the first): an estimate good enough for the summary.
        span = max(0.0, outage.last_error - outage.started)
        return sum(min(count, 1 + int(span // self.interval_s)) for count in outage.lines.values())

    def _watch_outage(self) -> None:
        while not self.settle():
            time.sleep(min(1.0, self.quiet_s / 4))


_CONNECTION_SIGNS = (
    "KafkaConnectionError",
    "NodeNotReadyError",
    "Unable connect to node",
    "Unable to update metadata",
    "Connect call failed",
    "RequestTimedOutError",
)


def is_connection_error(record: logging.LogRecord) -> bool:
    """An error that means the broker cannot be reached (not, say, a coordinator moving)."""
    text = record.getMessage()
    return any(sign in text for sign in _CONNECTION_SIGNS)


def cause_of(record: logging.LogRecord) -> str:
    """What makes two records "the same error": logger, message template, exception types."""
    args = record.args if isinstance(record.args, tuple) else ()
    kinds = ",".join(type(arg).__name__ for arg in args if isinstance(arg, BaseException))
    if not kinds and record.exc_info and record.exc_info[0] is not None:
        kinds = record.exc_info[0].__name__
    text = str(record.msg).replace("%s", "…").replace("%r", "…").replace("%d", "…")
    return f"{record.name}: {text}" + (f" [{kinds}]" if kinds else "")


def install_kafka_log_filters() -> None:
    """Attach the filters to aiokafka's loggers (once, however often it is called)."""
    for name, kind in ((_COORDINATOR_LOGGER, CoordinatorStartupFilter), (_FETCHER_LOGGER, NewTopicLeaderFilter)):
        logger = logging.getLogger(name)
        if not any(isinstance(f, kind) for f in logger.filters):
            logger.addFilter(kind())
    limiter = OutageLogLimiter()  # one for all: an outage is one, whichever client reports it
    for name in _CLIENT_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, OutageLogLimiter) for f in logger.filters):
            logger.addFilter(limiter)


def _is_coordinator_not_available(record: logging.LogRecord) -> bool:
    args = record.args if isinstance(record.args, tuple) else ()
    return (
        record.name == _COORDINATOR_LOGGER
        and record.msg == "Group Coordinator Request failed: %s"
        and any(isinstance(arg, GroupCoordinatorNotAvailableError) for arg in args)
    )


def _lower(record: logging.LogRecord, level: int) -> None:
    record.levelno = level
    record.levelname = logging.getLevelName(level)
