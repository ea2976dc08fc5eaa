"""The deployment files parse and agree with the code: services, topics, settings, commands.

Nothing here runs Docker or Kubernetes (neither exists on this machine): the files are read
and checked against ``deploy.settings``, ``schemas.topics`` and the ``tuyen`` typer app.
Helpers at the top are shared with ``test_deploy_manifests_k8s.py``.
"""

from __future__ import annotations

import importlib.util
import inspect
import re
import shlex
import sys
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import typer.main

from sinks.config import ERASURE_WRITERS

yaml = pytest.importorskip("yaml", reason="pyyaml is a dev dependency")

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
COMPOSE_DIR = DEPLOY / "compose"
COMPOSE = COMPOSE_DIR / "docker-compose.yml"
K8S = DEPLOY / "k8s"
MONITORING = DEPLOY / "monitoring"
TUYEN_IMAGE = "tuyen"

PORTAL = ("tuyen", "portal", "serve")
SIGNOFF_SINK = ("tuyen", "sink", "signoff")
#: A province root's compaction (a CronJob / compose job per province root).
COMPACT_PROVINCE = ("tuyen", "compact", "--province")
COMPACT_QUARANTINE = ("tuyen", "compact", "--owner", "quarantine")


def sink_argv(name: str) -> tuple[str, ...]:
    return ("tuyen", "sink", name)


#: What each workload must be given outside development mode (``deploy.anchors``, the
#: monitor off loopback): setting → "path" (a file the setting names) or "secret" (read from
#: ``<SETTING>_FILE``, never inline). Matched on the start of the `tuyen` command line.
NEEDS: dict[tuple[str, ...], dict[str, str]] = {
    ("tuyen", "streams", "worker"): {
        "TUYEN_KEY_REGISTRY": "path",
        "TUYEN_PSEUDONYM_KEY": "secret",
    },
    ("tuyen", "monitor", "serve"): {"TUYEN_MONITOR_TOKEN": "secret"},
    PORTAL: {
        "TUYEN_PORTAL_SESSION_KEY": "secret",
        "TUYEN_ACCESS_LOG_KEY": "secret",
        "TUYEN_APPROVER_KEYS": "path",
    },
    SIGNOFF_SINK: {"TUYEN_APPROVER_KEYS": "path", "TUYEN_ERASURE_KEY": "secret"},
    # the writers of record rows and dead letters apply the erasure register (sinks.erasure)
    **{sink_argv(n): {"TUYEN_ERASURE_KEY": "secret"} for n in ERASURE_WRITERS if n != "signoff"},
    # compaction rewrites a province's record rows or the dead letters: the register applies
    COMPACT_PROVINCE: {"TUYEN_ERASURE_KEY": "secret"},
    COMPACT_QUARANTINE: {"TUYEN_ERASURE_KEY": "secret"},
}
#: Secrets only the workloads that need them may see (least privilege): secret → the command
#: lines (their starts) that may have it.
ONLY_FOR: dict[str, tuple[tuple[str, ...], ...]] = {
    "TUYEN_PSEUDONYM_KEY": (("tuyen", "streams", "worker"),),
    "TUYEN_ERASURE_KEY": (*(sink_argv(n) for n in ERASURE_WRITERS), ("tuyen", "compact")),
    "TUYEN_PORTAL_SESSION_KEY": (PORTAL,),
    "TUYEN_ACCESS_LOG_KEY": (PORTAL,),
}
#: Workloads that use no Kafka: they get no Kafka principal (least privilege). The portal
#: sends its approvals to signoff.decisions (its principal may write only that topic).
WITHOUT_KAFKA: tuple[tuple[str, ...], ...] = (("tuyen", "compact"),)


def without_kafka(argv: Any) -> bool:
    """Whether a `tuyen` command line is one of :data:`WITHOUT_KAFKA` (on its start)."""
    return any(tuple(argv[: len(w)]) == w for w in WITHOUT_KAFKA)


#: Every secret a manifest must never write inline (compose environment, ConfigMaps).
SECRET_VARS = (
    "TUYEN_PSEUDONYM_KEY",
    "TUYEN_MONITOR_TOKEN",
    "TUYEN_KAFKA_SASL_PASSWORD",
    "TUYEN_PORTAL_SESSION_KEY",
    "TUYEN_ACCESS_LOG_KEY",
)


def load_yaml(path: Path) -> list[Any]:
    """Every document of a YAML file (empty documents dropped)."""
    with path.open(encoding="utf-8") as fh:
        return [d for d in yaml.safe_load_all(fh) if d is not None]


def yaml_files() -> list[Path]:
    found = [
        p
        for base in (COMPOSE_DIR, K8S, MONITORING)
        for p in sorted(base.rglob("*"))
        if p.suffix in {".yml", ".yaml"}
    ]
    return found


COMPOSE_FILES = ("docker-compose.yml", "provinces.yml")


def _merge(into: dict[str, Any], more: dict[str, Any]) -> None:
    """Compose's merge of a later file: mappings key by key, lists concatenated."""
    for key, value in more.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        elif isinstance(value, list) and isinstance(into.get(key), list):
            into[key] = [*into[key], *value]
        else:
            into[key] = value


@cache
def _compose() -> dict[str, Any]:
    env = (COMPOSE_DIR / ".env").read_text(encoding="utf-8")
    assert f"COMPOSE_FILE={':'.join(COMPOSE_FILES)}" in env.splitlines()
    result: dict[str, Any] = {}
    for name in COMPOSE_FILES:
        doc = load_yaml(COMPOSE_DIR / name)
        assert len(doc) == 1
        _merge(result, doc[0])
    return result


def compose() -> dict[str, Any]:
    """The pilot as docker compose sees it: docker-compose.yml merged with the generated
    provinces.yml (the files ``.env`` names)."""
    import copy

    return copy.deepcopy(_compose())


def tuyen_services() -> dict[str, dict[str, Any]]:
    """Compose services running the tuyen image."""
    return {
        name: svc
        for name, svc in compose()["services"].items()
        if str(svc.get("image", "")).split(":")[0] == TUYEN_IMAGE or "build" in svc
    }


@cache
def generator() -> ModuleType:
    """deploy/k8s/generate.py, loaded from its path (it is a script, not a package module)."""
    name = "tuyen_k8s_generate"
    spec = importlib.util.spec_from_file_location(name, K8S / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def k8s_docs() -> Iterator[tuple[Path, dict[str, Any]]]:
    """Every Kubernetes object under deploy/k8s (kustomize files excluded)."""
    for path in yaml_files():
        if K8S not in path.parents or path.name == "kustomization.yaml":
            continue
        for doc in load_yaml(path):
            yield path, doc


WORKLOAD_KINDS = frozenset({"Deployment", "StatefulSet", "Job", "CronJob"})


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    """The pod spec of a workload (a CronJob's is in its job template)."""
    spec = doc["spec"]["jobTemplate"]["spec"] if doc["kind"] == "CronJob" else doc["spec"]
    return spec["template"]["spec"]


def k8s_containers() -> Iterator[tuple[str, dict[str, Any]]]:
    for _, doc in k8s_docs():
        if doc.get("kind") in WORKLOAD_KINDS:
            for c in pod_spec(doc)["containers"]:
                yield doc["metadata"]["name"], c


def is_tuyen_image(image: str) -> bool:
    return image.split(":")[0] == TUYEN_IMAGE


@cache
def settings_env_names() -> frozenset[str]:
    """Every environment variable deploy.settings.Settings reads."""
    from pydantic import AliasChoices

    from deploy.settings import SECRET_FIELDS, Settings, env_name

    prefix = str(Settings.model_config.get("env_prefix", ""))
    names: set[str] = {env_name(f) + "_FILE" for f in SECRET_FIELDS}
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(str(c) for c in alias.choices)
        elif isinstance(alias, str):
            names.add(alias)
        else:
            names.add((prefix + name).upper())
    return frozenset(names)


def used_env_names() -> set[str]:
    """Env vars given to tuyen containers anywhere: compose and k8s."""
    names: set[str] = set()
    for svc in tuyen_services().values():
        names.update((svc.get("environment") or {}).keys())
    for _, doc in k8s_docs():
        if doc.get("kind") == "ConfigMap" and doc["metadata"]["name"] == "tuyen-settings":
            names.update(doc["data"].keys())
    for _, c in k8s_containers():
        if is_tuyen_image(c["image"]):
            names.update(e["name"] for e in c.get("env", []))
    return names


def tuyen_commands() -> list[tuple[str, ...]]:
    """Every `tuyen ...` command line in compose and the Kubernetes manifests."""
    found: list[tuple[str, ...]] = []
    for svc in compose()["services"].values():
        cmd = svc.get("command")
        if cmd:
            found.append(tuple(shlex.split(cmd) if isinstance(cmd, str) else cmd))
    for _, c in k8s_containers():
        found.append(tuple([*c.get("command", []), *c.get("args", [])]))
    return sorted({c for c in found if c and c[0] == "tuyen"})


def is_group(cmd: Any) -> bool:
    """A command group (typer vendors its own click: duck-type rather than isinstance)."""
    return isinstance(getattr(cmd, "commands", None), dict)


@cache
def root_command() -> Any:
    from deploy.cli.root import app

    group = typer.main.get_command(app)
    assert is_group(group)
    return group


def command_param(argv: tuple[str, ...]) -> Any:
    top = argv[1] if len(argv) > 1 else ""
    if top not in root_command().commands:
        return pytest.param(
            argv,
            id=" ".join(argv),
            marks=pytest.mark.xfail(
                strict=False,
                reason=f"`tuyen {top}` is not registered in deploy.cli.app yet (being written)",
            ),
        )
    return pytest.param(argv, id=" ".join(argv))


def topic_names() -> set[str]:
    from schemas.topics import topic_specs

    return {s.name for s in topic_specs()}


# ---------------------------------------------------------------- files parse


@pytest.mark.parametrize("path", yaml_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_yaml_file_parses(path: Path) -> None:
    docs = load_yaml(path)
    assert docs, f"{path} is empty"
    assert all(isinstance(d, dict) for d in docs)


def test_generated_files_are_up_to_date() -> None:
    stale = [
        str(path.relative_to(ROOT))
        for path, text in generator().outputs().items()
        if not path.exists() or path.read_text(encoding="utf-8") != text
    ]
    assert not stale, f"run `.venv/bin/python deploy/k8s/generate.py`; stale: {stale}"


# ---------------------------------------------------------------- docker-compose


def test_compose_services_have_existing_images_or_builds() -> None:
    services = compose()["services"]
    for name, svc in services.items():
        assert "image" in svc or "build" in svc, name
        image = str(svc.get("image", ""))
        assert not image.endswith(":latest") and ":" in image, f"{name}: pin the image ({image})"
        if "build" in svc:
            build = svc["build"]
            context = (COMPOSE_DIR / build["context"]).resolve()
            assert context.is_dir(), name
            assert (context / build.get("dockerfile", "Dockerfile")).is_file(), name
    kafka = [s for s in services.values() if str(s.get("image", "")).startswith("apache/kafka")]
    assert {s["image"] for s in kafka} == {"apache/kafka:4.4.0"}
    assert len([s for s in kafka if "KAFKA_NODE_ID" in s["environment"]]) == 3


def test_compose_references_exist() -> None:
    doc = compose()
    services = doc["services"]
    secrets = set(doc.get("secrets", {}))
    volumes = set(doc.get("volumes", {}))
    for name, svc in services.items():
        deps = svc.get("depends_on", {})
        for target in deps if isinstance(deps, (list, dict)) else []:
            assert target in services, f"{name} depends on unknown service {target}"
        for secret in svc.get("secrets", []):
            assert secret in secrets, f"{name}: unknown secret {secret}"
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith((".", "/")):
                assert (COMPOSE_DIR / source).exists(), f"{name}: missing {source}"
            else:
                assert source in volumes, f"{name}: undeclared volume {source}"
        for env_file in svc.get("env_file", []):
            example = COMPOSE_DIR / f"{env_file}.example"
            assert example.exists(), f"{name}: {env_file} has no committed example"


def test_compose_one_service_per_sink_and_scalable_workers() -> None:
    services = compose()["services"]
    sinks = {n: svc["command"] for n, svc in services.items() if n.startswith("sink-")}
    codes = generator().province_codes()
    assert {f"sink-{name}" for name in generator().SINKS} | {
        f"sink-province-{c}" for c in codes
    } == set(sinks)
    for service, command in sinks.items():  # one principal, one owner per service
        if service.startswith("sink-province-"):
            code = service.removeprefix("sink-province-")
            assert command == ["tuyen", "sink", "province", "district", "--province", code]
        else:
            assert command == ["tuyen", "sink", service.removeprefix("sink-")]
    assert services["streams"]["deploy"]["replicas"] >= 2
    assert "container_name" not in services["streams"]  # would forbid --scale
    assert services["topics"]["command"] == ["tuyen", "topics", "apply"]
    monitor = services["monitor"]
    assert "9308:9308" in monitor["ports"]
    assert "--host" in monitor["command"]  # the default 127.0.0.1 is unreachable in a container


def test_compose_replication_and_min_insync() -> None:
    for name, svc in compose()["services"].items():
        env = svc.get("environment") or {}
        if "KAFKA_NODE_ID" in env:
            assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == "3", name
            assert env["KAFKA_MIN_INSYNC_REPLICAS"] == "2", name
            assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "3", name
            assert env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == "2", name
            voters = env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")
            assert len(voters) == 3, name


def compose_secret_files(svc: dict[str, Any]) -> dict[str, str]:
    """Path in the container → compose secret, for the secrets a service mounts."""
    found: dict[str, str] = {}
    for entry in svc.get("secrets", []):
        name = entry if isinstance(entry, str) else entry["source"]
        target = name if isinstance(entry, str) else entry.get("target", name)
        found[target if target.startswith("/") else f"/run/secrets/{target}"] = name
    return found


def needs_of(argv: tuple[str, ...]) -> dict[str, str]:
    """What a `tuyen` command line must be given (the monitor only off loopback)."""
    for prefix, needs in NEEDS.items():
        if argv[: len(prefix)] == prefix:
            if prefix[1] == "monitor" and "--host" not in argv:
                return {}
            return needs
    return {}


def missing_anchors(
    argv: tuple[str, ...], env: dict[str, str], secret_file: Callable[[str], bool]
) -> list[str]:
    """The trust anchors a workload needs and is not given from a mounted secret."""
    problems = []
    for var, kind in needs_of(argv).items():
        if kind == "secret":
            if var in env:
                problems.append(f"{var} inline: use {var}_FILE")
            path = env.get(var + "_FILE")
        else:
            path = env.get(var)
        if not path or not secret_file(path):
            problems.append(f"{var}: not read from a mounted secret ({path!r})")
    return problems


def test_compose_workloads_get_their_trust_anchors_from_secrets() -> None:
    services = compose()["services"]
    checked = set()
    for name, svc in tuyen_services().items():
        argv = tuple(svc.get("command") or ())
        env = {k: str(v) for k, v in (svc.get("environment") or {}).items()}
        mounted = compose_secret_files(svc)
        assert not missing_anchors(argv, env, mounted.__contains__), name
        if needs_of(argv):
            checked.add(name)
        assert "TUYEN_DEV" not in env and "env_file" not in svc, name
        for secret, only in ONLY_FOR.items():
            if not any(argv[: len(o)] == o for o in only):
                assert secret not in env and secret + "_FILE" not in env, f"{name}: {secret}"
    codes = generator().province_codes()
    provinces = {f"sink-province-{c}" for c in codes}
    compacts = {f"compact-province-{c}" for c in codes}
    assert checked == {
        "streams",
        "monitor",
        "portal",
        "sink-signoff",
        "sink-dlq",
        "compact-quarantine",
        *provinces,
        *compacts,
    }
    declared = compose()["secrets"]
    for svc in services.values():
        for secret in compose_secret_files(svc).values():
            assert declared[secret]["file"].startswith("./secrets/"), secret
    ignored = (COMPOSE_DIR / ".gitignore").read_text(encoding="utf-8").split()
    assert "secrets/" in ignored
    text = re.sub(r"#.*", "", COMPOSE.read_text(encoding="utf-8"))
    for inline in SECRET_VARS:
        assert f"{inline}:" not in text


def test_the_anchor_check_catches_a_workload_without_them() -> None:
    worker = ("tuyen", "streams", "worker", "--no-create-topics")
    mounted = {"/run/secrets/key_registry", "/run/secrets/pseudonym_key"}.__contains__
    good = {
        "TUYEN_KEY_REGISTRY": "/run/secrets/key_registry",
        "TUYEN_PSEUDONYM_KEY_FILE": "/run/secrets/pseudonym_key",
    }
    assert missing_anchors(worker, good, mounted) == []
    assert len(missing_anchors(worker, {}, mounted)) == 2
    inline = {"TUYEN_KEY_REGISTRY": "/run/secrets/key_registry", "TUYEN_PSEUDONYM_KEY": "k"}
    assert "TUYEN_PSEUDONYM_KEY inline: use TUYEN_PSEUDONYM_KEY_FILE" in missing_anchors(
        worker, inline, mounted
    )
    elsewhere = {**good, "TUYEN_KEY_REGISTRY": "/etc/tuyen/keys.json"}
    assert missing_anchors(worker, elsewhere, mounted)
    monitor = ("tuyen", "monitor", "serve", "--host", "0.0.0.0")
    assert missing_anchors(monitor, {}, mounted) and not missing_anchors(monitor[:3], {}, mounted)
    assert len(missing_anchors(PORTAL, {}, mounted)) == 3  # on loopback too
    keys = {
        "TUYEN_PORTAL_SESSION_KEY_FILE": "/run/secrets/key_registry",
        "TUYEN_APPROVER_KEYS": "/run/secrets/pseudonym_key",
    }
    assert missing_anchors(PORTAL, keys, mounted) == [
        "TUYEN_ACCESS_LOG_KEY: not read from a mounted secret (None)"
    ]
    assert missing_anchors(SIGNOFF_SINK, {}, mounted) == [
        "TUYEN_APPROVER_KEYS: not read from a mounted secret (None)",
        "TUYEN_ERASURE_KEY: not read from a mounted secret (None)",
    ]
    province = ("tuyen", "sink", "province", "district", "--province", "01")
    assert missing_anchors(province, {}, mounted) == [
        "TUYEN_ERASURE_KEY: not read from a mounted secret (None)"
    ]
    assert missing_anchors(("tuyen", "sink", "national"), {}, mounted) == []


def test_compose_compacts_each_province_root_as_a_job_with_the_erasure_key_only() -> None:
    """`docker compose run --rm compact-province-<code>` (a profile: `up` starts none):
    `tuyen compact --province <code>` with the erasure key as a secret file, its province's
    volume alone, no Kafka settings and no other secret."""
    services = compose()["services"]
    codes = generator().province_codes()
    jobs = {n: s for n, s in services.items() if n.startswith("compact-")}
    assert set(jobs) == {f"compact-province-{c}" for c in codes} | {
        "compact-national",
        "compact-quarantine",
    }
    for owner, erases in (("national", False), ("quarantine", True)):
        job = jobs[f"compact-{owner}"]
        assert job["command"] == ["tuyen", "compact", "--owner", owner]
        assert job["profiles"] == ["jobs"] and job["restart"] == "no"
        assert set(compose_secret_files(job).values()) == ({"erasure_key"} if erases else set())
        assert job["volumes"] == [f"store-{owner}:/data/store/{owner}"]
        assert not [n for n in job["environment"] if "KAFKA" in n or "PSEUDONYM" in n]
    for code in codes:
        job = jobs[f"compact-province-{code}"]
        assert job["command"] == ["tuyen", "compact", "--province", code]
        assert job["profiles"] == ["jobs"] and job["restart"] == "no"
        assert job["environment"]["TUYEN_ERASURE_KEY_FILE"] == "/run/secrets/erasure_key"
        assert set(compose_secret_files(job).values()) == {"erasure_key"}
        assert job["volumes"] == [f"store-province-{code}:/data/store/province-{code}"]
        assert not [n for n in job["environment"] if "KAFKA" in n or "PSEUDONYM" in n]


def test_compose_portal_reads_the_store_and_keeps_its_state() -> None:
    services = compose()["services"]
    portal = services["portal"]
    assert tuple(portal["command"][:3]) == PORTAL and "--host" in portal["command"]
    env = portal["environment"]
    volumes = dict(v.split(":", 1) for v in portal["volumes"])
    sinks = [s for n, s in services.items() if n.startswith("sink-") and n != "sink-dlq"]
    # the signoff sink's own dead rows (decisions that fail verification) go to the quarantine
    stores = {v.split(":")[0] for s in sinks for v in s["volumes"]} - {"store-quarantine"}
    for store in stores:  # every analysts' store, read-only; never the quarantine
        assert volumes[store].endswith(":ro"), store
    assert "store-quarantine" not in volumes
    state = Path(env["TUYEN_PORTAL_STATE_DIR"])
    (state_volume,) = [v for v, target in volumes.items() if state.is_relative_to(target)]
    assert state_volume not in stores and state_volume in compose()["volumes"]
    assert f"127.0.0.1:{env['TUYEN_PORTAL_PORT']}:{env['TUYEN_PORTAL_PORT']}" in portal["ports"]


def test_compose_each_owner_has_its_own_store_and_each_service_its_own_principal() -> None:
    """A province's volume is written by its sink alone (and its ``signoff/`` folder by the
    signoff sink); the quarantine by the DLQ sink (and the signoff sink's dead rows); every
    service connects as its own principal with its own password secret, over
    SASL_SSL; the brokers have no PLAINTEXT listener and one super user."""
    services = compose()["services"]
    writers: dict[str, set[str]] = {}
    for name, svc in services.items():
        for v in svc.get("volumes", []):
            source, _, rest = v.partition(":")
            if source.startswith("store-") and not rest.endswith(":ro"):
                writers.setdefault(source, set()).add(name)
    for code in generator().province_codes():
        assert writers[f"store-province-{code}"] == {
            f"sink-province-{code}",
            "sink-signoff",
            f"compact-province-{code}",  # rewrites its closed months in place
        }
    assert writers["store-quarantine"] == {"sink-dlq", "sink-signoff", "compact-quarantine"}
    assert writers["store-national"] == {"sink-national", "sink-aggregates", "compact-national"}
    principals = set(generator().deployed_principals())
    for name, svc in tuyen_services().items():
        env = svc.get("environment") or {}
        if without_kafka(svc["command"]):
            assert not [n for n in env if "KAFKA" in n], f"{name}: Kafka settings it never uses"
            continue
        user = env["TUYEN_KAFKA_SASL_USERNAME"]
        assert user in principals, name
        assert env["TUYEN_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL", name
        assert env["TUYEN_KAFKA_SASL_PASSWORD_FILE"] == f"/run/secrets/kafka-{user}", name
        assert f"kafka-{user}" in compose_secret_files(svc).values(), name
    init = set(compose_secret_files(services["kafka-init"]).values())
    assert {f"kafka-{p}" for p in principals} <= init
    for name, svc in services.items():
        env = svc.get("environment") or {}
        if "KAFKA_NODE_ID" in env:
            protocols = dict(
                x.split(":") for x in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
            )
            assert set(protocols.values()) == {"SASL_SSL"}, name
            assert env["KAFKA_SUPER_USERS"] == "User:admin", name
            assert env["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false", name
    names = (DEPLOY / "security" / "principals.txt").read_text(encoding="utf-8").split()
    assert set(names) == principals


def test_compose_monitoring_wiring() -> None:
    prom = load_yaml(MONITORING / "prometheus.yml")[0]
    targets = [
        t for job in prom["scrape_configs"] for s in job["static_configs"] for t in s["targets"]
    ]
    assert "monitor:9308" in targets
    (job,) = [j for j in prom["scrape_configs"] if j["job_name"] == "tuyen-monitor"]
    services = compose()["services"]
    token = services["monitor"]["environment"]["TUYEN_MONITOR_TOKEN_FILE"]
    secret = compose_secret_files(services["monitor"])[token]
    auth = job["authorization"]
    assert auth["type"] == "Bearer"
    assert compose_secret_files(services["prometheus"])[auth["credentials_file"]] == secret
    ds = load_yaml(MONITORING / "grafana/provisioning/datasources/prometheus.yml")[0]
    assert ds["datasources"][0]["url"] == "http://prometheus:9090"
    assert "prometheus" in compose()["services"] and "grafana" in compose()["services"]


def test_compose_facility_registry_is_a_config_file_the_services_can_load() -> None:
    """The stream workers and the portal get TUYEN_FACILITIES from a compose config (not a
    secret: it names facilities, nobody's data), and the shipped file is a registry they
    can load."""
    from schemas.facilities import load_hierarchy

    readers = set()
    for name, svc in tuyen_services().items():
        path = (svc.get("environment") or {}).get("TUYEN_FACILITIES")
        if path is None:
            continue
        (config,) = [c for c in svc.get("configs", []) if c["target"] == path]
        load_hierarchy(COMPOSE_DIR / compose()["configs"][config["source"]]["file"])
        readers.add(name)
    assert readers == {"streams", "portal"}


# ---------------------------------------------------------------- settings and commands


@pytest.mark.parametrize("name", sorted(used_env_names()))
def test_env_var_is_a_setting(name: str) -> None:
    assert name in settings_env_names() | {"KAFKA_BOOTSTRAP"}, (
        f"{name} is not read by deploy/settings.py"
    )


@pytest.mark.parametrize("argv", [command_param(c) for c in tuyen_commands()])
def test_tuyen_command_exists(argv: tuple[str, ...]) -> None:
    """Resolve groups, then parse the remaining arguments against the leaf command."""
    cmd = root_command()
    args = list(argv[1:])
    while is_group(cmd):
        assert args and args[0] in cmd.commands, f"`{' '.join(argv)}`: no command {args[:1]}"
        cmd = cmd.commands[args.pop(0)]
    cmd.make_context(cmd.name or "tuyen", args)  # raises UsageError on unknown options


def test_commands_found() -> None:
    argvs = tuyen_commands()
    tops = {a[1] for a in argvs}
    assert {"topics", "streams", "sink", "monitor", "portal"} <= tops


def test_topics_apply_follows_the_cluster_size() -> None:
    """RF 3 with min.insync.replicas 2 from three brokers on (what compose and Strimzi run),
    all brokers and 1 below; apply_topics reads the size unless told."""
    from deploy.broker.config import replication_for
    from deploy.topics import apply_topics

    assert [replication_for(n) for n in (1, 2, 3, 6)] == [(1, 1), (2, 1), (3, 2), (3, 2)]
    default = inspect.signature(apply_topics).parameters["replication_factor"].default
    assert default is None
