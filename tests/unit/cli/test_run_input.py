"""`--input JSON|@file` for `ferry run` and `ferry submit`."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from app.cli.run_input import InputError, read_input


def test_inline_json_is_the_input() -> None:
    assert read_input('{"message": "hi", "n": 2}') == {"message": "hi", "n": 2}


def test_a_json_file_is_the_input(tmp_path: Path) -> None:
    request = tmp_path / "request.json"
    request.write_text('{"vendor": "Acme"}')
    assert read_input(f"@{request}") == {"vendor": "Acme"}


def test_any_other_file_is_attached_as_a_document(tmp_path: Path) -> None:
    scan = tmp_path / "invoice.pdf"
    scan.write_bytes(b"%PDF-1.4 bytes")
    assert read_input(f"@{scan}") == {
        "files": [
            {
                "name": "invoice.pdf",
                "mime_type": "application/pdf",
                "data": base64.b64encode(b"%PDF-1.4 bytes").decode(),
            }
        ]
    }


def test_bad_inline_json_says_so_and_points_at_files() -> None:
    with pytest.raises(InputError, match=r"--input is not valid JSON \(.*\); use @file for a file"):
        read_input("{not json")


def test_a_broken_json_file_is_named(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(InputError, match=f"{broken} is not valid JSON"):
        read_input(f"@{broken}")


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=f"cannot read {tmp_path / 'absent.pdf'}: No such file or directory"):
        read_input(f"@{tmp_path / 'absent.pdf'}")
