"""Kafka Connect (distributed mode, one worker) with the Debezium JDBC sink on its plugin path.

Distributed mode keeps connector configs and offsets in Kafka topics, so a connector
survives a restart of the worker exactly as it would in production.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from app.devstack.errors import DevStackError
from app.devstack.jars import connect_plugin_path, kafka_libs
from app.devstack.kafka import _log4j2_properties, java_command
from app.devstack.ports import LOOPBACK, claim_port
from app.devstack.process import spawn, stop_process
from app.devstack.service import ServiceInfo, wait_until_ready

CONNECT_HEAP = "-Xmx512m"
JDBC_SINK_CLASS = "io.debezium.connector.jdbc.JdbcSinkConnector"


def _worker_properties(bootstrap: str, rest_port: int, plugins: Path, data_dir: Path) -> str:
    return f"""bootstrap.servers={bootstrap}
group.id=ferry-connect
key.converter=org.apache.kafka.connect.json.JsonConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
key.converter.schemas.enable=true
value.converter.schemas.enable=true
config.storage.topic=ferry-connect-configs
offset.storage.topic=ferry-connect-offsets
status.storage.topic=ferry-connect-status
config.storage.replication.factor=1
offset.storage.replication.factor=1
status.storage.replication.factor=1
offset.storage.partitions=1
status.storage.partitions=1
offset.flush.interval.ms=1000
listeners=http://{LOOPBACK}:{rest_port}
rest.advertised.host.name={LOOPBACK}
rest.advertised.port={rest_port}
plugin.path={plugins}
plugin.discovery=hybrid_warn
"""


def start_connect(
    bootstrap: str, data_dir: Path, log_dir: Path, *, port: int | None = None, timeout: float = 120
) -> ServiceInfo:
    libs = kafka_libs()
    plugins = connect_plugin_path()
    rest_port = claim_port(port, "Kafka Connect", "--connect-port")
    data_dir.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    config = data_dir / "connect-distributed.properties"
    config.write_text(_worker_properties(bootstrap, rest_port, plugins, data_dir))
    log_config = data_dir / "log4j2.properties"
    log_config.write_text(_log4j2_properties(log_dir, "connect"))
    process = spawn(
        java_command(libs, log_config, CONNECT_HEAP, "org.apache.kafka.connect.cli.ConnectDistributed", str(config)),
        log_dir / "connect.out",
    )
    url = f"http://{LOOPBACK}:{rest_port}"
    wait_until_ready(
        "Kafka Connect",
        process.pid,
        log_dir / "connect.out",
        lambda: _has_jdbc_sink(url),
        timeout=timeout,
    )
    return ServiceInfo(
        name="connect", address=url, pid=process.pid, log_path=log_dir / "connect.log", data_dir=data_dir
    )


def rest(url: str, method: str = "GET", body: dict[str, Any] | None = None, timeout: float = 10) -> Any:
    """One call to Connect's REST API; JSON in, JSON out."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json", "Accept": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            payload = response.read()
    except urllib.error.HTTPError as exc:
        raise DevStackError(
            f"Kafka Connect answered {exc.code} to {method} {url}: {exc.read().decode(errors='replace')[:300]}",
            "check the connector config and the Connect log",
        ) from None
    return json.loads(payload) if payload else None


def _has_jdbc_sink(url: str) -> bool:
    try:
        plugins = rest(f"{url}/connector-plugins", timeout=2)
    except (OSError, DevStackError):
        return False
    return any(plugin.get("class") == JDBC_SINK_CLASS for plugin in plugins)


def stop_connect(info: ServiceInfo) -> None:
    stop_process(info.pid, timeout=30)
