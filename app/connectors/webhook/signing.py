"""How a delivery proves it comes from Ferry: an HMAC over the timestamp and the body.

    X-Ferry-Signature = hex(HMAC-SHA256(secret, f"{timestamp}.{body}"))

The timestamp is inside the MAC so a receiver can refuse old replays of a captured
request; the delivery id is stable per run and destination so a receiver can drop the
duplicates that at-least-once delivery brings (a retry, a replay from the DLQ).
"""

from __future__ import annotations

import hashlib
import hmac
import uuid

SIGNATURE_HEADER = "X-Ferry-Signature"
TIMESTAMP_HEADER = "X-Ferry-Timestamp"
DELIVERY_HEADER = "X-Ferry-Delivery"

#: Namespace of delivery ids: the same run and destination give the same id, everywhere.
_DELIVERY_NAMESPACE = uuid.UUID("0b7f4e52-8c1d-4a3e-9f6b-2d5a7c9e1f30")


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The hex HMAC-SHA256 of `timestamp + "." + body` under `secret`."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """Whether `signature` is `sign(secret, timestamp, body)`, compared in constant time."""
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def delivery_id(run_id: str, destination: str) -> str:
    """The id of delivering `run_id` to `destination`: the same across retries and replays."""
    return str(uuid.uuid5(_DELIVERY_NAMESPACE, f"{run_id}\x00{destination}"))


def signed_headers(secret: str | None, timestamp: str, body: bytes, delivery: str) -> dict[str, str]:
    """The headers of one attempt (no signature header when the destination has no secret)."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "ferry-webhooks",
        TIMESTAMP_HEADER: timestamp,
        DELIVERY_HEADER: delivery,
    }
    if secret is not None:
        headers[SIGNATURE_HEADER] = sign(secret, timestamp, body)
    return headers
