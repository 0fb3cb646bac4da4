"""A started worker's long-lived objects are out of the collector's way."""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import textwrap
import weakref

from app.cli.gc_tuning import RUNNING_THRESHOLDS, release_heap_when_quiet, settle_started_process


class _Service:
    """Stands for what a worker builds at start (clients, projects, tables)."""


def test_what_exists_at_start_is_never_walked_again_and_cycles_made_later_still_go() -> None:
    started = [_Service() for _ in range(100)]
    garbage_before = [_Service()]
    garbage_before.append(garbage_before)  # a cycle left by start-up: freed, not frozen
    left_by_start = weakref.ref(garbage_before[0])
    del garbage_before
    thresholds = gc.get_threshold()
    try:
        settle_started_process()
        assert gc.get_threshold() == RUNNING_THRESHOLDS != thresholds
        walked = {id(obj) for obj in gc.get_objects()}
        assert gc.get_freeze_count() > 0 and not walked & {id(service) for service in started}
        assert left_by_start() is None
        later = [_Service()]
        later.append(later)
        del later
        assert gc.collect() > 0  # a cycle made after start is collected as before
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


def test_freed_heap_memory_goes_back_to_the_system_once_started() -> None:
    """Freed C-heap memory below a live block stays in RSS until trimmed (glibc: the CI's)."""
    probe = textwrap.dedent(
        """
        from pathlib import Path
        from app.cli.gc_tuning import release_free_heap

        def rss_mib():
            status = Path("/proc/self/status").read_text().splitlines()
            return int(next(line for line in status if line.startswith("VmRSS")).split()[1]) / 1024

        chunks = [bytes(2000) + bytes([i % 256]) for i in range(20000)]  # ~40 MiB of malloc, not obmalloc
        above = bytes(2000) + b"x"  # allocated after them: the heap cannot shrink from its top
        del chunks
        before = rss_mib()
        print(release_free_heap(), before - rss_mib())
        """
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    trimmed, released = done.stdout.split()
    assert trimmed == "True" and float(released) > 20


async def test_the_heap_is_released_once_after_each_busy_spell_and_never_during_one() -> None:
    handled, running, released = [0], [False], [0]
    checked = asyncio.Event()

    def records_handled() -> int:
        checked.set()  # a check under way: it releases, or not, before the test goes on
        return handled[0]

    def release() -> bool:
        released[0] += 1
        return True

    async def after_checks(count: int) -> None:
        for _ in range(count):
            checked.clear()
            await checked.wait()

    task = asyncio.create_task(
        release_heap_when_quiet(records_handled, lambda: running[0], every_s=0.001, release=release)
    )
    try:
        await after_checks(3)
        assert released[0] == 0  # nothing ran since start: start-up already released its heap
        handled[0], running[0] = 5, True
        await after_checks(3)
        assert released[0] == 0  # runs still going: their pages would be taken again at once
        running[0] = False
        await after_checks(3)
        assert released[0] == 1
        await after_checks(3)
        assert released[0] == 1  # quiet with nothing new: not again
        handled[0] = 6
        await after_checks(3)
        assert released[0] == 2
    finally:
        task.cancel()
