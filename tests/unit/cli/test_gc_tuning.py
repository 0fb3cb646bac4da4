"""A started worker's long-lived objects are out of the collector's way."""

from __future__ import annotations

import gc
import weakref

from app.cli.gc_tuning import settle_started_process


class _Service:
    """Stands for what a worker builds at start (clients, projects, tables)."""


def test_what_exists_at_start_is_never_walked_again_and_cycles_made_later_still_go() -> None:
    started = [_Service() for _ in range(100)]
    garbage_before = [_Service()]
    garbage_before.append(garbage_before)  # a cycle left by start-up: freed, not frozen
    left_by_start = weakref.ref(garbage_before[0])
    del garbage_before
    try:
        settle_started_process()
        walked = {id(obj) for obj in gc.get_objects()}
        assert gc.get_freeze_count() > 0 and not walked & {id(service) for service in started}
        assert left_by_start() is None
        later = [_Service()]
        later.append(later)
        del later
        assert gc.collect() > 0  # a cycle made after start is collected as before
    finally:
        gc.unfreeze()
