"""Fetch the pinned Apache Kafka broker jars once, verify them, and cache them.

Maven (which this kind of machine ships) resolves ``org.apache.kafka:kafka_2.13`` and its
runtime dependencies from Maven Central into a cache folder; every jar is then checked
against the committed lock file (``kafka-<version>.sha256``), so a changed artifact is
refused rather than run. Later calls find the verified folder and return at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from deploy.exceptions import JarResolutionError

logger = logging.getLogger(__name__)

KAFKA_VERSION = "4.4.0"
LOG4J_VERSION = "2.24.3"
JMX_EXPORTER = "jmx_prometheus_javaagent"
JMX_EXPORTER_VERSION = "1.0.1"

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>tuyen</groupId><artifactId>kafka-broker-jars</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>{kafka}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId>
      <version>{log4j}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId>
      <version>{log4j}</version></dependency>
  </dependencies>
</project>
"""

_AGENT_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>tuyen</groupId><artifactId>jmx-exporter-agent</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>io.prometheus.jmx</groupId><artifactId>{artifact}</artifactId>
      <version>{version}</version></dependency>
  </dependencies>
</project>
"""

_READY = ".verified"


def lock_entries(version: str = KAFKA_VERSION, name: str = "kafka") -> dict[str, str]:
    """The committed ``file name -> sha256`` lock ``<name>-<version>.sha256``."""
    lock = Path(__file__).with_name(f"{name}-{version}.sha256")
    try:
        text = lock.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise JarResolutionError(f"no lock file for {name} {version} ({lock})") from exc
    entries: dict[str, str] = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            digest, name = line.split()
            entries[name] = digest
    return entries


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """Serialise concurrent fetches (parallel test runs) on one cache folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _maven_fetch(dest: Path, version: str, pom_text: str | None = None) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise JarResolutionError(
            "Maven (`mvn`) is needed once to fetch the Kafka jars; install it "
            "(Debian: apt-get install maven) or set KAFKA_BOOTSTRAP to an existing cluster"
        )
    with tempfile.TemporaryDirectory(prefix="tuyen-kafka-pom-") as work:
        pom = Path(work) / "pom.xml"
        text = pom_text or _POM.format(kafka=version, log4j=LOG4J_VERSION)
        pom.write_text(text, encoding="utf-8")
        cmd = [
            mvn,
            "-B",
            "-q",
            "-C",  # fail on checksum mismatch while downloading
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={dest}",
            "-DincludeScope=runtime",
        ]
        logger.info("fetching Apache Kafka jars version=%s dest=%s", version, dest)
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
        if proc.returncode != 0:
            tail = (proc.stdout + proc.stderr)[-3000:]
            raise JarResolutionError(f"mvn could not fetch version {version}:\n{tail}")


def verify(libs: Path, version: str = KAFKA_VERSION, name: str = "kafka") -> None:
    """Check every jar in ``libs`` against the lock: same set of names, same digests."""
    expected = lock_entries(version, name)
    present = {p.name for p in libs.glob("*.jar")}
    missing = sorted(set(expected) - present)
    extra = sorted(present - set(expected))
    if missing or extra:
        raise JarResolutionError(
            f"{name} jars differ from the lock: missing={missing} extra={extra}"
        )
    for name, digest in expected.items():
        actual = _sha256(libs / name)
        if actual != digest:
            raise JarResolutionError(f"checksum mismatch for {name}: {actual} != {digest}")


def ensure_jars(cache_dir: Path, version: str = KAFKA_VERSION) -> Path:
    """Return the folder of verified Kafka jars, fetching them the first time."""
    return _ensure(cache_dir / "kafka" / version, version, "kafka", None)


def ensure_jmx_agent(cache_dir: Path, version: str = JMX_EXPORTER_VERSION) -> Path:
    """Return the verified Prometheus JMX exporter java agent jar, fetching it the first time."""
    pom = _AGENT_POM.format(artifact=JMX_EXPORTER, version=version)
    libs = _ensure(cache_dir / JMX_EXPORTER / version, version, JMX_EXPORTER, pom)
    return libs / f"{JMX_EXPORTER}-{version}.jar"


def _ensure(root: Path, version: str, name: str, pom_text: str | None) -> Path:
    libs = root / "libs"
    if (root / _READY).exists():
        return libs
    with _exclusive(root.parent / f".{version}.lock"):
        if (root / _READY).exists():
            return libs
        staging = root.parent / f".{version}.staging"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        _maven_fetch(staging / "libs", version, pom_text)
        verify(staging / "libs", version, name)
        shutil.rmtree(root, ignore_errors=True)
        staging.rename(root)
        (root / _READY).write_text("ok\n", encoding="utf-8")
        logger.info("jars verified name=%s version=%s path=%s", name, version, libs)
    return libs


def write_lock(libs: Path, version: str = KAFKA_VERSION) -> Path:
    """Regenerate the committed lock file from a trusted jar folder (maintainers only)."""
    target = Path(__file__).with_name(f"kafka-{version}.sha256")
    lines = [f"# Apache Kafka {version} broker runtime jars, fetched from Maven Central by mvn"]
    lines += [f"{_sha256(p)}  {p.name}" for p in sorted(libs.glob("*.jar"))]
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target
