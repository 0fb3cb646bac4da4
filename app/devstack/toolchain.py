"""Finding the external programs the dev stack runs, and saying what to install when absent."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from app.devstack.errors import DevStackError

MIN_JAVA_MAJOR = 17  # Kafka 4 brokers and Connect need Java 17+.


def require_program(name: str, debian_package: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise DevStackError(f"`{name}` is not on PATH", f"install it: apt-get install -y {debian_package}")
    return path


def java_major_version(java: str) -> int:
    completed = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', completed.stderr + completed.stdout)
    if match is None:
        raise DevStackError(
            f"could not read the Java version from `{java} -version`",
            "install a JDK 17+: apt-get install -y openjdk-17-jre-headless",
        )
    major = int(match.group(1))
    return int(match.group(2)) if major == 1 and match.group(2) else major


def require_java() -> str:
    java = require_program("java", "openjdk-17-jre-headless")
    major = java_major_version(java)
    if major < MIN_JAVA_MAJOR:
        raise DevStackError(
            f"Java {major} found, Kafka 4 needs Java {MIN_JAVA_MAJOR}+",
            "apt-get install -y openjdk-17-jre-headless, or put a newer java first on PATH",
        )
    return java


def postgres_bin_dir() -> Path:
    """Debian installs the server binaries under /usr/lib/postgresql/<major>/bin, off PATH."""
    on_path = shutil.which("initdb")
    if on_path is not None:
        return Path(on_path).parent
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if not candidates:
        raise DevStackError(
            "PostgreSQL server binaries (initdb, postgres) not found",
            "install them: apt-get install -y postgresql",
        )
    return candidates[-1].parent
