"""The test MCP server (tests/fixtures/mcp_servers/inventory.py), served over streamable HTTP
for the tests of Connic projects that reach it."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

INVENTORY = Path(__file__).parent / "fixtures" / "mcp_servers" / "inventory.py"


@contextmanager
def inventory_over_http() -> Iterator[int]:
    """The server on a free loopback port, once it accepts connections: its port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    process = subprocess.Popen(
        [sys.executable, str(INVENTORY), "http", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            with socket.socket() as attempt:
                if attempt.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert process.poll() is None and time.monotonic() < deadline, "the MCP test server did not start"
            time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)
