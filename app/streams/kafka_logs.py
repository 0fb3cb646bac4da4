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
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from aiokafka.errors import GroupCoordinatorNotAvailableError

COORDINATOR_GRACE_S = 30.0

_COORDINATOR_LOGGER = "aiokafka.consumer.group_coordinator"
_FETCHER_LOGGER = "aiokafka.consumer.fetcher"


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


def install_kafka_log_filters() -> None:
    """Attach the filters to aiokafka's loggers (once, however often it is called)."""
    for name, kind in ((_COORDINATOR_LOGGER, CoordinatorStartupFilter), (_FETCHER_LOGGER, NewTopicLeaderFilter)):
        logger = logging.getLogger(name)
        if not any(isinstance(f, kind) for f in logger.filters):
            logger.addFilter(kind())


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
