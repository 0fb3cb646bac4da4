"""Which version one run uses: its pin, else the canary for a stable slice of run ids, else the active one.

The slice is a hash of the run id, not a coin flip: every worker, and the same worker
after a restart or a redelivery, puts a given run on the same version, so a run that is
retried never hops between versions and the split holds however the runs are spread.
The stages of a pipeline are split by the pipeline's run id (`versions.py`), so a canary
takes whole pipelines.
"""

from __future__ import annotations

import hashlib

from app.deploy.records import ActiveState

#: Resolution of the split: percentages are honoured to 0.01 %.
BUCKETS = 10_000


def bucket(run_id: str) -> int:
    """A stable number in [0, BUCKETS) for `run_id`, uniform over run ids."""
    digest = hashlib.sha256(run_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def in_canary(run_id: str, percent: float) -> bool:
    return bucket(run_id) < round(percent * BUCKETS / 100)


def choose_version(run_id: str, state: ActiveState, pinned: str | None = None) -> str | None:
    """The version a new run of `run_id` uses (None: no deployment is active)."""
    if pinned:
        return pinned
    if state.canary is not None and in_canary(run_id, state.canary.percent):
        return state.canary.version
    return state.active
