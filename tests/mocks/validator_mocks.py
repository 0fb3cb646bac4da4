"""Mocks of the invoice-validator's tool (tests/invoice-validator.yaml, `mocks: validator_mocks`).

`mock_validation_verify_totals` replaces `validation.verify_totals`: called as
mock(tool_name, params, context), its return value is the tool's result.
"""


def mock_validation_verify_totals(tool_name, params, context):
    invoice = params.get("invoice") or {}
    return {
        "status": "invalid",
        "valid": False,
        "checks": [
            {"check": "subtotal + tax = total", "expected": "0", "actual": str(invoice.get("total")), "ok": False}
        ],
        "failed_checks": ["subtotal + tax = total"],
        "unclear_fields": [],
    }
