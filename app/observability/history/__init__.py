"""Run history: every run and span of `runs.results` / `runs.traces`, in a SQL store.

    HistoryStore.open(url=None)    SQLite under the Ferry home, or $FERRY_DATABASE_URL;
                                   schema migrated on first use; upserts, queries, prune
    HistorySettings                database URL, consumer group, retention, batching
    HistoryProjector               (history.projector) the Kafka consumer feeding the store

The store is a projection: it can be dropped and rebuilt by replaying the topics. The
projector is imported from its module so that readers (`ferry runs`) skip aiokafka.
"""

from app.observability.history.queries import AmbiguousRunId, RunFilter, UsageBy
from app.observability.history.records import PruneReport, RunRecord, SpanRecord, UsageLine
from app.observability.history.settings import HistorySettings, database_url, ferry_home
from app.observability.history.store import HistoryStore

__all__ = [
    "AmbiguousRunId",
    "HistorySettings",
    "HistoryStore",
    "PruneReport",
    "RunFilter",
    "RunRecord",
    "SpanRecord",
    "UsageBy",
    "UsageLine",
    "database_url",
    "ferry_home",
]
