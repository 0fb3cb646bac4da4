"""Cold start of the local stack's services with the jars cached: until each answers for real.

    .venv/bin/python bench/bench_devstack_start.py --repeat 3 [--services kafka,postgres,connect]

Each round uses a fresh data dir (so Kafka's storage is formatted, PostgreSQL's initdb
runs), starts the services in order, records the seconds until each one's readiness probe
passed (Kafka: a metadata round trip; PostgreSQL: a query; Connect: the JDBC sink plugin
listed), then stops everything.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path

from app.devstack.jars import connect_plugin_path, kafka_libs
from app.devstack.stack import SERVICES, DevStack


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--services", default=",".join(SERVICES))
    args = parser.parse_args()
    services = args.services.split(",")
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    kafka_libs(), connect_plugin_path()  # fetch outside the timing
    timings: dict[str, list[float]] = {name: [] for name in services}
    for _ in range(args.repeat):
        home = Path(tempfile.mkdtemp(prefix="ferry-bench-stack-"))
        home.chmod(0o755)
        stack = DevStack(home)
        try:
            for name in services:
                started = time.perf_counter()
                stack.up([*(s for s in SERVICES if s in services and SERVICES.index(s) < SERVICES.index(name)), name])
                timings[name].append(time.perf_counter() - started)
        finally:
            stack.down()
    for name, values in timings.items():
        print(
            f"{name:<9} median {statistics.median(values):6.2f}s  min {min(values):6.2f}s  max {max(values):6.2f}s  (n={len(values)})"
        )


if __name__ == "__main__":
    main()
