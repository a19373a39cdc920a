"""A single-node KRaft Apache Kafka broker from Maven Central jars."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import re
import shutil
import subprocess
import time
from importlib import resources
from pathlib import Path

from streams.connections.kafka import KafkaAccess, KafkaSettings, kafka_options
from streams.stack.broker_security import BrokerSecurity
from streams.stack.errors import StackError
from streams.stack.ports import HOST
from streams.stack.process import ProcessRecord, log_tail, spawn

KAFKA_VERSION = "4.3.1"
JAVA_MIN = 17
# Small and quick to start: enough for the tests, the demo and a laptop.
JVM_OPTS = ["-Xms256m", "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"]
READY_TIMEOUT_S = 90.0

_RESOURCES = resources.files("streams.stack") / "resources"


def _java() -> str:
    java = shutil.which("java")
    if java is None:
        raise StackError(
            f"Java {JAVA_MIN}+ is needed to run the local Kafka broker and `java` is not on PATH: "
            "install it (`apt-get install -y openjdk-17-jre-headless` as root), or set "
            "SALESPULSE_KAFKA_BOOTSTRAP to a running broker."
        )
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    major = int(match.group(1)) if match else 0
    if major == 1 and match and match.group(2):  # "1.8.0" style
        major = int(match.group(2))
    if major < JAVA_MIN:
        raise StackError(
            f"Kafka {KAFKA_VERSION} needs Java {JAVA_MIN}+, but `{java}` is Java {major or '?'}: "
            "install openjdk-17-jre-headless and put it first on PATH (or set JAVA_HOME/bin "
            "first), or set SALESPULSE_KAFKA_BOOTSTRAP to a running broker."
        )
    return java


def ensure_jars(cache: Path, version: str = KAFKA_VERSION) -> Path:
    """The broker's jar directory, downloaded from Maven Central on first use."""
    libs = cache / f"kafka-{version}" / "libs"
    if (libs / ".complete").is_file():
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise StackError(
            "Maven (`mvn`) is needed once to fetch the Kafka broker jars from Maven Central and "
            "is not on PATH: install it (`apt-get install -y maven` as root), or set "
            "SALESPULSE_KAFKA_BOOTSTRAP to a running broker."
        )
    partial = libs.with_name(f"libs.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    with resources.as_file(_RESOURCES / "kafka-pom.xml") as pom:
        argv = [
            mvn, "-B", "-q", "-f", str(pom), "dependency:copy-dependencies",
            f"-Dkafka.version={version}", "-DincludeScope=runtime",
            f"-DoutputDirectory={partial}",
        ]  # fmt: skip
        print(f"Fetching Apache Kafka {version} jars from Maven Central into {libs} (once) ...")
        out = subprocess.run(argv, capture_output=True, text=True, check=False)
    if out.returncode != 0 or not any(partial.glob(f"kafka_2.13-{version}.jar")):
        shutil.rmtree(partial, ignore_errors=True)
        tail = "\n".join((out.stdout + out.stderr).strip().splitlines()[-15:])
        raise StackError(
            f"could not fetch the Kafka {version} jars from Maven Central (mvn exit "
            f"{out.returncode}). Check that Maven Central is reachable from this machine (proxy "
            "settings go in ~/.m2/settings.xml), then run the command again; or set "
            f"SALESPULSE_KAFKA_BOOTSTRAP to a running broker.\nmvn said:\n{tail}"
        )
    (partial / ".complete").write_text(version)
    shutil.rmtree(libs, ignore_errors=True)
    partial.rename(libs)
    return libs


def _cluster_id() -> str:
    """16 random bytes, url-safe base64 without padding, not starting with '-'."""
    while True:
        cid = base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()
        if not cid.startswith("-"):
            return cid


def _server_properties(
    data: Path, port: int, controller_port: int, security: BrokerSecurity | None
) -> str:
    # The clients' listener is PLAINTEXT, or SASL_SSL when secured; the controller's listener
    # stays plaintext on the loopback interface (one node: only the broker itself uses it).
    listener = "PLAINTEXT" if security is None else "SASL_SSL"
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@{HOST}:{controller_port}",
            f"listeners={listener}://{HOST}:{port},CONTROLLER://{HOST}:{controller_port}",
            f"advertised.listeners={listener}://{HOST}:{port}",
            "controller.listener.names=CONTROLLER",
            f"inter.broker.listener.name={listener}",
            f"listener.security.protocol.map={listener}:{listener},CONTROLLER:PLAINTEXT",
            *([] if security is None else security.broker_properties()),
            f"log.dirs={data}",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=10",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            # Topics are created on purpose, with their partitions and cleanup policy.
            "auto.create.topics.enable=false",
            "num.partitions=1",
            "log.retention.hours=-1",
            "",
        ]
    )


def start_broker(
    run_dir: Path,
    cache: Path,
    port: int,
    controller_port: int,
    *,
    die_with_parent: bool,
    security: BrokerSecurity | None = None,
) -> ProcessRecord:
    """Format storage, start the broker and return once a metadata request is answered.

    With ``security`` the clients' listener is SASL_SSL and its SCRAM user is created at
    format time."""
    java = _java()
    libs = ensure_jars(cache)
    data = run_dir / "kafka-data"
    config = run_dir / "kafka.properties"
    log = run_dir / "kafka.log"
    config.touch(mode=0o600)  # holds the SCRAM password when secured
    config.write_text(_server_properties(data, port, controller_port, security))
    scram = [] if security is None else ["--add-scram", security.scram_credential()]
    classpath = f"{libs}/*"
    with resources.as_file(_RESOURCES / "log4j2.properties") as log4j:
        log_opt = f"-Dlog4j2.configurationFile={log4j}"
        if not (data / "meta.properties").is_file():
            fmt = subprocess.run(
                [java, "-cp", classpath, log_opt, "kafka.tools.StorageTool", "format",
                 "-t", _cluster_id(), "-c", str(config), *scram],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            if fmt.returncode != 0:
                raise StackError(
                    f"formatting Kafka storage in {data} failed; delete {run_dir} and run again."
                    f"\n{fmt.stdout[-2000:]}{fmt.stderr[-2000:]}"
                )
        process = spawn(
            [java, *JVM_OPTS, "-cp", classpath, log_opt, "kafka.Kafka", str(config)],
            log,
            cwd=run_dir,
            die_with_parent=die_with_parent,
        )
        bootstrap = f"{HOST}:{port}"
        access = KafkaAccess(bootstrap) if security is None else security.access(bootstrap)
        _wait_ready(process, access, log)
    return process


def _wait_ready(process: ProcessRecord, access: KafkaSettings, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if not process.alive():
            raise StackError(
                f"the Kafka broker exited during start-up. Its log ({log}) ends with:\n"
                f"{log_tail(log)}\nFix the cause above, or delete {log.parent} and run again."
            )
        if asyncio.run(metadata_round_trip(access)):
            return
        time.sleep(0.3)
    process.stop()
    raise StackError(
        f"the Kafka broker did not answer a metadata request at {access.kafka_bootstrap} within "
        f"{READY_TIMEOUT_S:.0f} s. Its log ({log}) ends with:\n{log_tail(log)}"
    )


async def metadata_round_trip(access: KafkaSettings, timeout_ms: int = 2000) -> bool:
    """True when the broker of ``access`` answers a metadata request with itself."""
    from aiokafka.admin import AIOKafkaAdminClient  # imported late: slow, not needed by all
    from aiokafka.errors import KafkaError

    admin = AIOKafkaAdminClient(**kafka_options(access).client, request_timeout_ms=timeout_ms)
    quiet = logging.getLogger("aiokafka")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # "connection refused" is the expected answer for a while
    try:
        await admin.start()
        cluster = await admin.describe_cluster()
        return bool(cluster.get("brokers"))
    except (TimeoutError, KafkaError, OSError):
        return False
    finally:
        await admin.close()
        quiet.setLevel(level)
