"""Running the simulator as its own process, for tests and tools that need it out of process.

A worker under test in another process (or `ferry dev`) needs a provider URL, not a
Python object; the control API then scripts it over HTTP.
"""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from typing import NamedTuple

from app.devstack.llm_sim.rules import Rule, RuleSet


class SimulatorProcess(NamedTuple):
    base_url: str
    """`http://127.0.0.1:<port>/v1`; the control API is at the same host under `/_sim`."""
    stop: Callable[[], None]


def start_simulator_process(
    rules: Sequence[Rule] = (),
    *,
    port: int = 0,
    latency_ms: int = 0,
    startup_timeout_s: float = 20.0,
    extra_args: Sequence[str] = (),
) -> SimulatorProcess:
    """Starts `python -m app.devstack.llm_sim` and waits until it printed its URL.

    Port 0 lets the OS choose, so parallel tests never collide.
    """
    rules_path: str | None = None
    args = [sys.executable, "-m", "app.devstack.llm_sim", "--port", str(port), "--latency-ms", str(latency_ms)]
    if rules:
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
            handle.write(RuleSet(rules=list(rules)).model_dump_json())
            rules_path = handle.name
        args += ["--rules", rules_path]
    args += list(extra_args)
    process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)

    def stop() -> None:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()
        if rules_path is not None and os.path.exists(rules_path):
            os.unlink(rules_path)

    try:
        base_url = _read_base_url(process, startup_timeout_s)
    except BaseException:
        stop()
        raise
    return SimulatorProcess(base_url=base_url, stop=stop)


def _read_base_url(process: subprocess.Popen[str], timeout_s: float) -> str:
    """The CLI's first stdout line is the base URL."""
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout_s):
            raise TimeoutError(f"the LLM simulator did not start within {timeout_s} s")
    line = process.stdout.readline()
    if not line:
        raise RuntimeError(f"the LLM simulator exited with code {process.wait()} before starting")
    return line.strip()
