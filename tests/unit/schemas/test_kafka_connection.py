"""One Kafka connection: every client is built in ``schemas/kafka.py`` from a
``KafkaConnection``, which carries the security settings and never shows its secrets."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from deploy.exceptions import ConfigError
from deploy.settings import Settings, kafka_env
from schemas.kafka import (
    KafkaConnection,
    KafkaUnreachable,
    check_connection,
    client_config,
    faust_credentials,
    producer_config,
)
from schemas.partition import PARTITIONER

ROOT = Path(__file__).resolve().parents[3]
SOURCES = ("producers", "streams", "sinks", "schemas", "deploy", "tests", "benchmarks")
THE_MODULE = ROOT / "schemas" / "kafka.py"
CLIENTS = {"Producer", "Consumer", "AdminClient", "SerializingProducer", "DeserializingConsumer"}

SASL = KafkaConnection(
    bootstrap="kafka-1:9094,kafka-2:9094",
    security_protocol="SASL_SSL",
    sasl_mechanism="SCRAM-SHA-512",
    sasl_username="tuyen-streams",
    sasl_password=SecretStr("s3cret-passw0rd"),
    ssl_ca_location="/etc/kafka-ca/ca.crt",
)


def python_files() -> list[Path]:
    return [p for d in SOURCES for p in sorted((ROOT / d).rglob("*.py"))]


def _called_name(node: ast.Call) -> str | None:
    f = node.func
    if isinstance(f, ast.Name):
        return f.id
    if isinstance(f, ast.Attribute):
        return f.attr
    return None


def test_kafka_clients_are_built_in_one_module_only() -> None:
    """No ``Producer(...)``, ``Consumer(...)``, ``AdminClient(...)`` and no hand-made
    ``bootstrap.servers`` anywhere but schemas/kafka.py: a client built elsewhere would miss
    the security settings. faust apps get the connection's credentials."""
    offenders: list[str] = []
    for path in python_files():
        if path in (THE_MODULE, Path(__file__).resolve()):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        where = path.relative_to(ROOT)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                name = _called_name(node)
                if name in CLIENTS:
                    offenders.append(f"{where}:{node.lineno} {name}(...)")
                if name == "App" and not any(k.arg == "broker_credentials" for k in node.keywords):
                    offenders.append(f"{where}:{node.lineno} faust App without credentials")
            if isinstance(node, ast.Constant) and node.value == "bootstrap.servers":
                offenders.append(f"{where}:{node.lineno} 'bootstrap.servers'")
    assert not offenders, "build Kafka clients with schemas.kafka: " + "; ".join(offenders)


def test_the_check_sees_what_it_looks_for() -> None:
    tree = ast.parse(THE_MODULE.read_text(encoding="utf-8"))
    built = {_called_name(node) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    assert {"Producer", "Consumer", "AdminClient"} <= built


#: the one module that may name a partitioner other than the contract's: it shows what
#: librdkafka's default (CRC32) does to the stream worker
OTHER_PARTITIONER_ALLOWED = {Path("tests/integration/test_partitioner.py")}


def _partitioners(tree: ast.AST) -> list[tuple[int, ast.expr]]:
    """Every value given to a ``"partitioner"`` key: in a dict literal or ``cfg[...] = v``."""
    found: list[tuple[int, ast.expr]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            found += [
                (v.lineno, v)
                for k, v in zip(node.keys, node.values, strict=True)
                if isinstance(k, ast.Constant) and k.value == "partitioner"
            ]
        elif isinstance(node, ast.Assign):
            found += [
                (node.lineno, node.value)
                for t in node.targets
                if isinstance(t, ast.Subscript)
                and isinstance(t.slice, ast.Constant)
                and t.slice.value == "partitioner"
            ]
    return found


def test_every_producer_partitions_with_murmur2() -> None:
    """Producers of station events (SDK, writers, simulator, demo, benchmarks, tests) put a
    record's changes where the stream worker keeps its state: ``schemas.kafka.producer``
    defaults to murmur2, the SDK's and the writers' settings say it, and no module but the
    partitioner test sets another partitioner (a literal one or any other expression)."""
    kafka = KafkaConnection(bootstrap="h:9092")
    assert producer_config(kafka)["partitioner"] == PARTITIONER == "murmur2_random"
    assert producer_config(kafka, {"linger.ms": 5})["partitioner"] == PARTITIONER
    from producers.config import ProducerConfig
    from producers.writers import fast_producer_config

    sdk = ProducerConfig(kafka=kafka, topic="t", outbox_path=Path("o"))
    assert sdk.producer_settings()["partitioner"] == PARTITIONER
    assert fast_producer_config()["partitioner"] == PARTITIONER
    with pytest.raises(ValidationError, match="partitioner must stay murmur2_random"):
        ProducerConfig(
            kafka=kafka, topic="t", outbox_path=Path("o"), extra={"partitioner": "random"}
        )
    offenders: list[str] = []
    for path in python_files():
        where = path.relative_to(ROOT)
        if where in OTHER_PARTITIONER_ALLOWED or path == Path(__file__).resolve():
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for line, value in _partitioners(tree):
            named = isinstance(value, ast.Name | ast.Attribute) and (
                getattr(value, "id", None) == "PARTITIONER"
                or getattr(value, "attr", None) == "PARTITIONER"
            )
            if not named and not (isinstance(value, ast.Constant) and value.value == PARTITIONER):
                offenders.append(f"{where}:{line} partitioner={ast.unparse(value)}")
    assert not offenders, "publish with the contract's murmur2: " + "; ".join(offenders)


def test_the_partitioner_check_sees_what_it_looks_for() -> None:
    tree = ast.parse('a = {"partitioner": "consistent_random"}\nb["partitioner"] = x\n')
    assert sorted(ast.unparse(v) for _, v in _partitioners(tree)) == ["'consistent_random'", "x"]
    allowed = ast.parse((ROOT / next(iter(OTHER_PARTITIONER_ALLOWED))).read_text())
    assert _partitioners(allowed), "the allowed module still shows another partitioner"


def test_secrets_never_shown() -> None:
    for text in (repr(SASL), str(SASL), SASL.model_dump_json(), repr(SASL.model_dump())):
        assert "s3cret" not in text
    system_cas = KafkaConnection.model_validate({**SASL.model_dump(), "ssl_ca_location": None})
    creds = faust_credentials(system_cas)
    assert "s3cret" not in repr(creds)
    assert creds.password == "s3cret-passw0rd"  # handed to aiokafka only
    assert creds.ssl_context is not None and creds.protocol.value == "SASL_SSL"
    with pytest.raises(KafkaUnreachable, match="TLS files"):
        faust_credentials(SASL)  # its CA file does not exist here


def test_librdkafka_and_faust_forms() -> None:
    assert SASL.librdkafka() == {
        "bootstrap.servers": "kafka-1:9094,kafka-2:9094",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "tuyen-streams",
        "sasl.password": "s3cret-passw0rd",
        "ssl.ca.location": "/etc/kafka-ca/ca.crt",
    }
    assert KafkaConnection(bootstrap="h:9092").librdkafka() == {"bootstrap.servers": "h:9092"}
    assert faust_credentials(KafkaConnection(bootstrap="h:9092")) is None
    tls = faust_credentials(KafkaConnection(bootstrap="h:9093", security_protocol="SSL"))
    assert tls.protocol.value == "SSL"
    plain_sasl = SASL.model_copy(update={"security_protocol": "SASL_PLAINTEXT"})
    plain_sasl = KafkaConnection.model_validate(
        {**plain_sasl.model_dump(), "ssl_ca_location": None}
    )
    creds = faust_credentials(plain_sasl)
    assert (creds.protocol.value, creds.mechanism.value) == ("SASL_PLAINTEXT", "SCRAM-SHA-512")


def test_a_client_cannot_override_the_connection() -> None:
    cfg = client_config(SASL, {"linger.ms": 5})
    assert cfg["linger.ms"] == 5 and cfg["security.protocol"] == "SASL_SSL"
    for key in ("bootstrap.servers", "security.protocol", "sasl.password", "ssl.ca.location"):
        with pytest.raises(ValueError, match=key):
            client_config(SASL, {key: "x"})


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"security_protocol": "SASL_SSL"}, "needs sasl_mechanism, sasl_password, sasl_username"),
        ({"sasl_username": "u"}, "sasl_username given but the security protocol is PLAINTEXT"),
        ({"ssl_ca_location": "/ca"}, "ssl_ca_location given but"),
        (
            {"security_protocol": "SSL", "ssl_certificate_location": "/c"},
            "needs both ssl_certificate_location and key",
        ),
        ({"security_protocol": "TLS"}, "security_protocol"),
    ],
)
def test_inconsistent_connections_are_refused(fields: dict[str, str], error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        KafkaConnection.model_validate({"bootstrap": "h:9092", **fields})


def test_settings_build_the_connection_and_name_the_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "password"
    secret.write_text("from-a-file\n")
    monkeypatch.setenv("KAFKA_BOOTSTRAP", "kafka:9094")
    monkeypatch.setenv("TUYEN_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("TUYEN_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("TUYEN_KAFKA_SASL_USERNAME", "station-00004")
    monkeypatch.setenv("TUYEN_KAFKA_SASL_PASSWORD_FILE", str(secret))
    conn = Settings.load().kafka_connection()
    assert conn.sasl_password is not None
    assert conn.sasl_password.get_secret_value() == "from-a-file"
    assert conn.bootstrap == "kafka:9094"
    assert Settings.load().kafka_connection("other:9094").sasl_username == "station-00004"
    # the child-process environment round-trips (secrets included, for the child only)
    env = kafka_env(conn, {"TUYEN_KAFKA_SASL_PASSWORD_FILE": "/x", "PATH": "/bin"})
    assert env["PATH"] == "/bin" and "TUYEN_KAFKA_SASL_PASSWORD_FILE" not in env
    monkeypatch.delenv("TUYEN_KAFKA_SASL_PASSWORD_FILE")
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert Settings.load().kafka_connection() == conn

    monkeypatch.delenv("TUYEN_KAFKA_SASL_PASSWORD")
    with pytest.raises(ConfigError, match="TUYEN_KAFKA_SASL_PASSWORD"):
        Settings.load().kafka_connection()
    monkeypatch.delenv("KAFKA_BOOTSTRAP")
    with pytest.raises(ConfigError, match="KAFKA_BOOTSTRAP"):
        Settings.load().kafka_connection()


def test_every_connection_field_is_a_setting() -> None:
    for name, field in KafkaConnection.model_fields.items():
        if name == "bootstrap":
            continue
        setting = Settings.model_fields["kafka_" + name]
        assert setting.annotation == field.annotation, name
        assert setting.default == field.default, name


def test_an_unusable_tls_file_is_reported_not_raised_raw() -> None:
    bad_ca = KafkaConnection(
        bootstrap="127.0.0.1:1", security_protocol="SSL", ssl_ca_location="/nonexistent/ca.crt"
    )
    with pytest.raises(KafkaUnreachable, match=r"ssl\.ca\.location"):
        check_connection(bad_ca, timeout_s=2)
