"""The projector decodes a fetched batch and builds its rows on the worker's event loop, a
slice at a time: the loop serves its runs between slices (a batch is hundreds of records),
and no thread holds the GIL with Python work while the loop waits for it."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from types import SimpleNamespace

from aiokafka import TopicPartition

from app.observability.history import HistorySettings, HistoryStore
from app.observability.history.projector import HistoryProjector
from app.streams.naming import TopicNames
from tests.unit.observability.history_samples import T0, llm_run_spans, result

RUNS = 100


async def test_a_large_batch_is_decoded_and_prepared_with_the_loop_served_between_slices(tmp_path: Path) -> None:
    names = TopicNames("t.")
    store = HistoryStore.open(f"sqlite:///{tmp_path / 'h.db'}")
    projector = HistoryProjector("unused:9092", names, HistorySettings(retention_days=36500), store=store)
    runs = [result(f"r{i}", start=T0) for i in range(RUNS)]
    spans = [span for run in runs for span in llm_run_spans(run.run_id, start=T0)]
    record = lambda value: SimpleNamespace(value=value.model_dump_json().encode())  # noqa: E731
    fetched = {
        TopicPartition(names.results, 0): [record(run) for run in runs],
        TopicPartition(names.traces, 0): [record(span) for span in spans],
    }
    turns = itertools.count()

    async def other_work() -> None:
        while True:
            next(turns)
            await asyncio.sleep(0)

    beside = asyncio.create_task(other_work())
    try:
        batch = await projector._decode(fetched)
        decoded = next(turns)
        prepared = await projector._prepare(store, batch)
        prepared_at = next(turns)
    finally:
        beside.cancel()
    records = RUNS + len(spans)
    assert (len(batch.results), len(batch.spans)) == (RUNS, len(spans))
    assert decoded >= records // 64  # the loop had a turn every slice, not once at the end
    assert prepared_at - decoded >= len(spans) // 64
    await asyncio.to_thread(store.write_prepared, prepared)
    assert store.counts() == (RUNS, len(spans))
    store.close()
