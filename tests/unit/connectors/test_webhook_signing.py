from __future__ import annotations

from app.connectors.webhook import DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, delivery_id, sign, verify
from app.connectors.webhook.signing import signed_headers

# Computed apart from Ferry: printf '1700000000.{"run_id":"r1"}' | openssl dgst -sha256 -hmac whsec_test
KNOWN = "2f968c749c27df9501758a9f038da504a81a51cfcab8bc95bdc210cdf4c061f2"


def test_signature_is_the_hmac_of_timestamp_dot_body() -> None:
    assert sign("whsec_test", "1700000000", b'{"run_id":"r1"}') == KNOWN


def test_verify_accepts_the_signature_and_refuses_any_change() -> None:
    body = b'{"run_id":"r1"}'
    assert verify("whsec_test", "1700000000", body, KNOWN)
    assert not verify("whsec_test", "1700000001", body, KNOWN)
    assert not verify("whsec_test", "1700000000", b'{"run_id":"r2"}', KNOWN)
    assert not verify("other", "1700000000", body, KNOWN)


def test_delivery_id_is_stable_per_run_and_destination() -> None:
    first = delivery_id("run-1", "callback:https://example.com/hook")
    assert first == delivery_id("run-1", "callback:https://example.com/hook")
    assert first != delivery_id("run-2", "callback:https://example.com/hook")
    assert first != delivery_id("run-1", "connector:crm")


def test_headers_carry_signature_timestamp_and_delivery() -> None:
    headers = signed_headers("whsec_test", "1700000000", b'{"run_id":"r1"}', "d-1")
    assert headers[SIGNATURE_HEADER] == KNOWN
    assert headers[TIMESTAMP_HEADER] == "1700000000"
    assert headers[DELIVERY_HEADER] == "d-1"
    assert SIGNATURE_HEADER not in signed_headers(None, "1700000000", b"{}", "d-1")
