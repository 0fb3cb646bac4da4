"""The dev broker's storage is formatted with a cluster id the storage tool accepts."""

from __future__ import annotations

import base64
import uuid

from app.devstack import kafka
from app.devstack.kafka import new_cluster_id


def test_a_cluster_id_never_starts_with_a_dash(monkeypatch) -> None:
    # 1 draw in 64 is a UUID whose URL-safe base64 starts with "-" (first six bits 62),
    # which `kafka-storage format -t` reads as an option and refuses: here the first one is.
    dash_first = uuid.UUID(bytes=bytes([0b11111000]) + bytes(15))
    assert base64.urlsafe_b64encode(dash_first.bytes).decode().startswith("-")
    draws = iter([dash_first, uuid.uuid4()] * 4)
    monkeypatch.setattr(kafka.uuid, "uuid4", lambda: next(draws))
    cluster_id = new_cluster_id()
    assert not cluster_id.startswith("-")
    assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16  # still a UUID's 16 bytes
