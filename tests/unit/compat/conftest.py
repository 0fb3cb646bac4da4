from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.observability.history.knowledge import SqlKnowledgeBackend


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[SqlKnowledgeBackend]:
    """The knowledge tools' store on a fresh SQLite history (test_documents.py has its own `backend`)."""
    store = SqlKnowledgeBackend.for_history(f"sqlite:///{tmp_path / 'history.db'}")
    yield store
    store.close()
