"""The garbage collector of a long-running process, set once it has started.

Measured in `ferry worker` under a burst of one-call runs (bench/RESULTS.md, "Worker CPU
per one-call run"): with Python's defaults the cyclic collector took ~30 % of the
worker's CPU, four fifths of it in full collections that walk the ~190,000 objects of
the imported modules and the started services on every pass, though none of them ever
becomes garbage. `gc.freeze()` once started moves them to the permanent generation,
which no collection walks again: the collector's share fell to ~13 %. A higher young
threshold (2,000 or 10,000 instead of 700) bought nothing more: each young collection
then walks more objects, and the total stayed the same or grew.

Objects freed by reference counting are freed as before; what is frozen is only never
collected as part of a reference cycle, and start-up objects live as long as the process.

What start-up freed stays in the C allocator's heap, counted in the process's RSS,
until `malloc_trim` hands its free pages back: ~1.5 MiB of an idle worker's ~100 MiB
(bench/bench_scale.py rest). glibc only; elsewhere nothing is trimmed.
"""

from __future__ import annotations

import ctypes
import gc
import linecache


def settle_started_process() -> None:
    """Call once the process's long-lived objects exist (after its services started)."""
    gc.collect()  # what start-up left as garbage is freed, not frozen with the rest
    gc.freeze()
    linecache.clearcache()  # source lines start-up read (faust's venusian scan): read again if needed
    release_free_heap()


def release_free_heap() -> bool:
    """Return the C heap's free pages to the system; whether the C library could."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # no C library to open, or not glibc
        return False
    return bool(trim(0))
