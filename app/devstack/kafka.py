"""A single-node Apache Kafka (KRaft, broker + controller in one JVM) from the Maven jars."""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import os
import uuid
from pathlib import Path

from app.devstack.errors import DevStackError
from app.devstack.jars import kafka_libs
from app.devstack.ports import LOOPBACK, claim_port, free_port, is_listening
from app.devstack.process import spawn, stop_process
from app.devstack.service import ServiceInfo, wait_until_ready
from app.devstack.toolchain import require_java

#: Kafka's own default. Each partition holds heap (its log, metrics, MBeans): at 512 MiB a
#: dev broker that had gathered ~9,000 partitions (a long test session's topics) ran with a
#: full old generation, and its serial collector stopped every request for ~0.8 s every
#: ~15 s, which showed up as request latency in every benchmark run against it.
BROKER_HEAP = "-Xmx1g"
#: Kafka's own collector settings (its kafka-run-class.sh). The serial collector, kept for
#: the short-lived tools and Connect, stopped the broker for 30-130 ms every ~20 s under a
#: benchmark's load, which every client saw as latency; G1 here pauses for 9-23 ms
#: (bench/RESULTS.md, "The consumer on the worker's loop").
BROKER_GC = (
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
)
SERIAL_GC = ("-XX:+UseSerialGC",)
_CLUSTER_ID_FILE = "ferry-cluster-id"


def _log4j2_properties(log_dir: Path, name: str) -> str:
    return f"""status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = {log_dir / f"{name}.log"}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.state.name = state.change.logger
logger.state.level = WARN
"""


def _server_properties(data_dir: Path, port: int, controller_port: int) -> str:
    return f"""process.roles=broker,controller
node.id=1
controller.quorum.voters=1@{LOOPBACK}:{controller_port}
listeners=PLAINTEXT://{LOOPBACK}:{port},CONTROLLER://{LOOPBACK}:{controller_port}
advertised.listeners=PLAINTEXT://{LOOPBACK}:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={data_dir / "log"}
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=24
"""


def java_command(
    libs: Path,
    log_config: Path,
    heap: str,
    main_class: str,
    *args: str,
    short_lived: bool = False,
    gc: tuple[str, ...] = SERIAL_GC,
) -> list[str]:
    # A one-shot tool finishes before C2 compilation pays off: C1 alone starts faster.
    jit = ["-XX:TieredStopAtLevel=1"] if short_lived else []
    return [
        require_java(),
        heap,
        *jit,
        *gc,
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={log_config}",
        "-cp",
        f"{libs}/*",
        main_class,
        *args,
    ]


def start_kafka(data_dir: Path, log_dir: Path, *, port: int | None = None, timeout: float = 90) -> ServiceInfo:
    """Start the broker, formatting its storage on first use of `data_dir`."""
    libs = kafka_libs()
    port = claim_port(port, "Kafka", "--kafka-port")
    controller_port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    config = data_dir / "server.properties"
    config.write_text(_server_properties(data_dir, port, controller_port))
    log_config = data_dir / "log4j2.properties"
    log_config.write_text(_log4j2_properties(log_dir, "kafka"))
    _format_storage_once(libs, data_dir, config, log_config, log_dir)
    process = spawn(
        java_command(libs, log_config, BROKER_HEAP, "kafka.Kafka", str(config), gc=BROKER_GC),
        log_dir / "kafka.out",
    )
    address = f"{LOOPBACK}:{port}"
    wait_until_ready("Kafka", process.pid, log_dir / "kafka.out", lambda: kafka_answers(address), timeout=timeout)
    return ServiceInfo(
        name="kafka", address=address, pid=process.pid, log_path=log_dir / "kafka.log", data_dir=data_dir
    )


def new_cluster_id() -> str:
    """A random cluster id as Kafka writes them (URL-safe base64 of a UUID), never starting
    with "-": the storage tool's argument parser would read such an id as an option, and
    formatting failed 1 time in 64 ("argument --cluster-id/-t: expected one argument").
    Kafka's own `Uuid.randomUuid` draws again in that case too."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _format_storage_once(libs: Path, data_dir: Path, config: Path, log_config: Path, log_dir: Path) -> None:
    import subprocess

    storage = data_dir / "log"
    id_file = data_dir / _CLUSTER_ID_FILE
    if (storage / "meta.properties").exists():
        if not id_file.exists():
            raise DevStackError(
                f"{storage} holds Kafka data that Ferry did not create",
                f"remove it (rm -rf {storage}) or choose another data dir",
            )
        return
    cluster_id = new_cluster_id()
    completed = subprocess.run(
        java_command(
            libs,
            log_config,
            "-Xmx256m",
            "kafka.tools.StorageTool",
            "format",
            "-t",
            cluster_id,
            "-c",
            str(config),
            short_lived=True,
        ),
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        (log_dir / "kafka-format.log").write_text(completed.stdout + completed.stderr)
        raise DevStackError(
            f"formatting Kafka storage in {storage} failed: {completed.stderr.strip()[-300:]}",
            f"remove the stale data dir (rm -rf {data_dir}) and start again",
        )
    id_file.write_text(cluster_id)


def kafka_answers(address: str) -> bool:
    """A real metadata round trip through aiokafka, once the port accepts connections."""
    if not is_listening(int(address.rsplit(":", 1)[1])):
        return False

    async def probe() -> bool:
        from aiokafka.admin import AIOKafkaAdminClient
        from aiokafka.errors import KafkaError

        admin = AIOKafkaAdminClient(bootstrap_servers=address, request_timeout_ms=2000)
        try:
            await admin.start()
            await admin.list_topics()
            return True
        except (TimeoutError, KafkaError, OSError):
            return False
        finally:
            await admin.close()

    # The caller may itself be inside an event loop (pytest-asyncio, the API): probe from
    # a thread with a loop of its own.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, probe()).result()


def stop_kafka(info: ServiceInfo) -> None:
    stop_process(info.pid, timeout=float(os.environ.get("FERRY_DEV_STOP_TIMEOUT", "30")))
