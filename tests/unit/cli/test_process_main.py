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


def _loop_of_a_command(env_value: str | None) -> subprocess.CompletedProcess[str]:
    """What `run_main` ran on, and what a wrong FERRY_EVENT_LOOP does to a command."""
    setting = "" if env_value is None else f"os.environ['FERRY_EVENT_LOOP'] = {env_value!r}"
    return _python(
        f"""
        import asyncio, os, sys
        os.environ.pop("FERRY_EVENT_LOOP", None)
        {setting}
        from app.cli.process_main import exit_code_for, run_main

        async def main():
            return type(asyncio.get_running_loop()).__module__

        try:
            print(run_main(main()))
        except Exception as exc:
            sys.exit(exit_code_for(exc))
        """
    )


def test_commands_run_on_uvloop_unless_asked_for_asyncio_s_loop() -> None:
    default, chosen, standard = _loop_of_a_command(None), _loop_of_a_command("uvloop"), _loop_of_a_command("asyncio")
    assert [default.stdout.strip(), chosen.stdout.strip()] == ["uvloop", "uvloop"], default.stderr
    assert standard.stdout.strip().startswith("asyncio"), standard.stderr


def test_an_unknown_event_loop_is_one_line_and_exit_2() -> None:
    completed = _loop_of_a_command("trio")
    assert completed.returncode == 2
    assert completed.stderr.strip().splitlines() == [
        "ferry: FERRY_EVENT_LOOP='trio' is not an event loop — fix: set it to uvloop or asyncio"
    ]
    assert "never awaited" not in completed.stderr
