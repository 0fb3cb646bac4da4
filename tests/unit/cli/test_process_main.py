"""Commands run their async main through `run_main`, which closes process-wide clients."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, cwd=ROOT, timeout=120
    )


def test_a_command_that_never_used_litellm_does_not_import_it_to_close_it() -> None:
    completed = _python(
        """
        import sys
        from app.cli.process_main import run_main

        async def main():
            return 7

        print(run_main(main()), "litellm" in sys.modules)
        """
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["7", "False"]


def test_litellm_clients_are_closed_after_the_main_even_when_it_fails() -> None:
    completed = _python(
        """
        import litellm
        from app.cli.process_main import run_main

        closed = []

        async def close():
            closed.append(True)

        litellm.close_litellm_async_clients = close

        async def main():
            raise RuntimeError("boom")

        try:
            run_main(main())
        except RuntimeError as exc:
            print("raised", exc, "closed", closed == [True])
        """
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "raised boom closed True"
