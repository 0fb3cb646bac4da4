"""The garbage collector of a long-running process, set once it has started.

Measured in `ferry worker` under bursts of one-call runs (bench/RESULTS.md, "Worker CPU
per one-call run" and "Worker CPU at 200 ms under 2.0 ms"): with Python's defaults the cyclic
collector took ~30 % of the worker's CPU, four fifths of it in full collections that walk
the ~190,000 objects of the imported modules and the started services on every pass,
though none of them ever becomes garbage. `gc.freeze()` once started moves them to the
permanent generation, which no collection walks again.

What is left is the objects of the runs in flight: a one-call run keeps its messages,
spans and buffers for the model's whole latency, so with the default young threshold
(700 allocations) every young collection finds most of them alive, and the promoted ones
are walked again by middle and full collections, a full one taking 40-50 ms. Young
collections every 10,000 allocations let most of a run's objects be freed by reference
counting before any collection sees them, and a full collection waits for 100 middle ones
instead of 10 (CPython's own rule still skips it until the objects promoted since the
last one are a quarter of those that survived it). Under a 3,000-run burst at 200 ms model
latency the collector's time fell from ~1.4 s to ~0.3 s, with no full collection after
start. A young collection then takes ~4-5 ms instead of ~0.4, a full one ~90 ms (once at
start, in `settle_started_process`).

Objects freed by reference counting are freed as before; what is frozen is only never
collected as part of a reference cycle, and start-up objects live as long as the process.

What start-up freed stays in the C allocator's heap, counted in the process's RSS,
until `malloc_trim` hands its free pages back: ~1.5 MiB of an idle worker's ~100 MiB
(bench/bench_scale.py rest). So does what runs freed: ~3 MiB after the first 20 runs,
handed back once the worker is quiet again (`release_heap_when_quiet`), never under load,
where the pages would be taken again at once. glibc only; elsewhere nothing is trimmed.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import linecache
import logging
import time
from collections.abc import Callable

log = logging.getLogger("ferry.memory")

#: Allocations between young collections, young collections between middle ones, middle
#: ones between full ones (Python's defaults: 700, 10, 10).
RUNNING_THRESHOLDS = (10_000, 10, 100)

#: How often a running process looks whether it has gone quiet since its last runs.
QUIET_CHECK_S = 5.0


def settle_started_process() -> None:
    """Call once the process's long-lived objects exist (after its services started)."""
    gc.collect()  # what start-up left as garbage is freed, not frozen with the rest
    gc.freeze()
    gc.set_threshold(*RUNNING_THRESHOLDS)
    linecache.clearcache()  # source lines start-up read (faust's venusian scan): read again if needed
    release_free_heap()


def release_free_heap() -> bool:
    """Return the C heap's free pages to the system; whether the C library could."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # no C library to open, or not glibc
        return False
    return bool(trim(0))


async def release_heap_when_quiet(
    records_handled: Callable[[], int],
    busy: Callable[[], bool],
    *,
    every_s: float = QUIET_CHECK_S,
    release: Callable[[], bool] = release_free_heap,
) -> None:
    """Hand the heap's free pages back once after each busy spell: when records were handled
    since the last time (`records_handled` counts them) and no run is running or queued now."""
    released_at = records_handled()
    while True:
        await asyncio.sleep(every_s)
        handled = records_handled()
        if handled != released_at and not busy():
            started = time.perf_counter()
            await asyncio.to_thread(release)  # it walks every free chunk: tens of ms on a large fragmented heap
            log.debug("heap: free pages released in %.1f ms", (time.perf_counter() - started) * 1000)
            released_at = handled
