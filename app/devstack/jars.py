"""Kafka, Connect and Debezium jars, fetched once from Maven Central into a user cache.

The jars live outside the repository (`~/.cache/ferry`, or `$FERRY_CACHE_DIR`) so every
checkout, test session and CI run on a machine shares one download. A fetch goes to a
temporary folder that is renamed into place only when Maven succeeded, under a file lock,
so an interrupted or concurrent fetch never leaves a half-filled folder behind.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

from app.devstack.errors import DevStackError
from app.devstack.toolchain import require_java, require_program

#: Proven with the faust round trip in tests/integration/test_faust_round_trip.py.
KAFKA_VERSION = "4.4.0"
#: Debezium's JDBC sink. 3.6.1.Final's connector jar is not on Maven Central and
#: 3.6.0.Final needs hibernate-agroal 7.2.6.Final, which is not either: 3.5.0.Final
#: is the newest whose whole dependency tree resolves from Central.
DEBEZIUM_VERSION = "3.5.0.Final"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"

_COMPLETE_MARKER = ".complete"


def cache_dir() -> Path:
    configured = os.environ.get("FERRY_CACHE_DIR")
    root = Path(configured) if configured else Path.home() / ".cache" / "ferry"
    root.mkdir(parents=True, exist_ok=True)
    return root


def kafka_libs() -> Path:
    """The folder of jars for the broker and Connect (one classpath: `<dir>/*`)."""
    return _ensure(
        cache_dir() / f"kafka-{KAFKA_VERSION}-{_pom_digest('kafka-pom.xml')}",
        "kafka-pom.xml",
        {"ferry.kafka.version": KAFKA_VERSION},
        f"Apache Kafka {KAFKA_VERSION} jars (~55 MB)",
    )


def connect_plugin_path() -> Path:
    """A Connect `plugin.path` holding the Debezium JDBC sink in its own folder."""
    plugins = cache_dir() / f"connect-plugins-{DEBEZIUM_VERSION}-{_pom_digest('debezium-jdbc-pom.xml')}"
    _ensure(
        plugins / "debezium-connector-jdbc",
        "debezium-jdbc-pom.xml",
        {"ferry.debezium.version": DEBEZIUM_VERSION},
        f"Debezium JDBC sink {DEBEZIUM_VERSION} (~40 MB)",
    )
    return plugins


def _pom_digest(pom_name: str) -> str:
    """Part of the cache folder's name: editing a pom fetches a fresh set of jars."""
    pom = resources.files("app.devstack") / "resources" / pom_name
    return hashlib.sha256(pom.read_bytes()).hexdigest()[:8]


def _ensure(target: Path, pom_name: str, properties: dict[str, str], what: str) -> Path:
    if (target / _COMPLETE_MARKER).exists():
        return target
    require_java()
    mvn = require_program("mvn", "maven")
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target.parent / f".{target.name}.lock"):
        if (target / _COMPLETE_MARKER).exists():
            return target
        print(f"ferry: fetching {what} from Maven Central, once per machine…", file=sys.stderr)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        try:
            _copy_dependencies(mvn, pom_name, properties, staging, cache_dir() / "maven.log")
            (staging / _COMPLETE_MARKER).touch()
            if target.exists():
                shutil.rmtree(target)
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _copy_dependencies(mvn: str, pom_name: str, properties: dict[str, str], output: Path, log_path: Path) -> None:
    resource_dir = resources.files("app.devstack") / "resources"
    with resources.as_file(resource_dir) as folder:
        command = [
            mvn, "-B", "-q",
            "-s", str(folder / "maven-settings.xml"),
            "-f", str(folder / pom_name),
            *(f"-D{key}={value}" for key, value in properties.items()),
            f"{DEPENDENCY_PLUGIN}:copy-dependencies",
            f"-DoutputDirectory={output}",
            "-DincludeScope=runtime",
        ]  # fmt: skip
        with log_path.open("w") as log:
            completed = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=False)
    if completed.returncode != 0:
        raise DevStackError(
            f"Maven could not fetch the jars (exit {completed.returncode}); see {log_path}",
            "check that Maven Central is reachable, then run the command again",
        )


@contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    with lock_path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
