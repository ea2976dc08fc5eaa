"""Kubernetes manifests, ACLs and the monitoring files agree with the code."""

from __future__ import annotations

import json
import re
import shlex
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from tests.unit.deploy.test_deploy_manifests import (
    DEPLOY,
    K8S,
    MONITORING,
    ONLY_FOR,
    SECRET_VARS,
    generator,
    is_tuyen_image,
    k8s_containers,
    k8s_docs,
    load_yaml,
    missing_anchors,
    needs_of,
    pod_spec,
    without_kafka,
)

STATION = "station-<code>"


def secret_files(pod: dict[str, Any], container: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """File path in the container → (Secret, key), for every Secret volume it mounts."""
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    found: dict[str, tuple[str, str]] = {}
    for mount in container.get("volumeMounts", []):
        secret = volumes[mount["name"]].get("secret")
        if secret is None:
            continue
        items = secret.get("items")
        files = {i["path"]: i["key"] for i in items} if items else None
        base = mount["mountPath"].rstrip("/")
        if files is None:  # every key of the Secret, under its own name
            found[base + "/*"] = (secret["secretName"], "*")
        else:
            for path, key in files.items():
                found[f"{base}/{path}"] = (secret["secretName"], key)
    return found


def from_secret(files: dict[str, tuple[str, str]], path: str) -> tuple[str, str] | None:
    if path in files:
        return files[path]
    head, _, key = path.rpartition("/")
    got = files.get(head + "/*")
    return (got[0], key) if got else None


def _keys_of(env: dict[str, str]) -> set[str]:
    """File names the environment points at (for Secrets mounted whole)."""
    return {v.rpartition("/")[2] for v in env.values() if v.startswith("/")}


def workloads() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(name, pod spec, container) of every tuyen container."""
    return [
        (doc["metadata"]["name"], pod_spec(doc), c)
        for _, doc in k8s_docs()
        if doc.get("kind") in {"Deployment", "StatefulSet", "Job", "CronJob"}
        for c in pod_spec(doc)["containers"]
        if is_tuyen_image(c["image"])
    ]


def env_values(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: str(e.get("value", "<from valueFrom>")) for e in container.get("env", [])}


def by_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in k8s_docs() if doc.get("kind") == kind]


def users() -> dict[str, dict[str, Any]]:
    return {u["metadata"]["name"]: u for u in by_kind("KafkaUser")}


def acl_rules(user: dict[str, Any]) -> list[tuple[str, str, str, frozenset[str]]]:
    """(resource type, name, pattern, operations) of one KafkaUser."""
    return [
        (
            a["resource"]["type"],
            a["resource"].get("name", ""),
            a["resource"].get("patternType", "literal"),
            frozenset(a["operations"]),
        )
        for a in user["spec"]["authorization"]["acls"]
    ]


# ---------------------------------------------------------------- kustomize


def test_kustomization_resources_exist() -> None:
    root = load_yaml(K8S / "kustomization.yaml")[0]
    for res in root["resources"]:
        assert (K8S / res).is_file(), res
    listed = {(K8S / r).resolve() for r in root["resources"]}
    for path, _ in k8s_docs():  # every base manifest is wired in (components apart)
        if "components" not in path.parts and path.name != "namespace.yaml":
            assert path.resolve() in listed, f"{path} is not in kustomization.yaml"


# ---------------------------------------------------------------- Strimzi Kafka


def test_kafka_is_kraft_with_node_pools_rf3_minisr2() -> None:
    (kafka,) = by_kind("Kafka")
    spec = kafka["spec"]["kafka"]
    assert spec["version"] == "4.4.0"
    assert "zookeeper" not in kafka["spec"]
    cfg = spec["config"]
    assert cfg["default.replication.factor"] == 3
    assert cfg["min.insync.replicas"] == 2
    assert cfg["offsets.topic.replication.factor"] == 3
    assert cfg["auto.create.topics.enable"] is False
    assert spec["authorization"]["type"] == "simple"
    assert {lst["authentication"]["type"] for lst in spec["listeners"]} == {"scram-sha-512"}
    pools = by_kind("KafkaNodePool")
    roles = {r for p in pools for r in p["spec"]["roles"]}
    assert roles == {"controller", "broker"}
    for p in pools:
        assert p["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"]
        assert p["spec"]["replicas"] == 3


def test_kafka_topics_match_schemas_topics() -> None:
    """The deployed shape: a record-level topic per province, no single-topic tiers."""
    from schemas.topics import topic_specs

    specs = {s.name: s for s in topic_specs(record_topics="province")}
    assert {t["spec"]["topicName"] for t in by_kind("KafkaTopic")} == set(specs)
    assert "tier.province" not in specs and "tier.district" not in specs
    assert len([n for n in specs if n.startswith("tier.province.")]) == 34
    for t in by_kind("KafkaTopic"):
        spec = t["spec"]
        assert spec["replicas"] == 3
        assert spec["config"]["min.insync.replicas"] == "2"
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", t["metadata"]["name"])
        name = spec["topicName"]
        assert spec["partitions"] == specs[name].partitions
        for key, value in specs[name].broker_config().items():
            assert spec["config"][key] == value


def test_every_topic_an_acl_names_exists() -> None:
    known = {t["spec"]["topicName"] for t in by_kind("KafkaTopic")} | {"__consumer_offsets"}
    for name, user in users().items():
        for rtype, rname, pattern, _ in acl_rules(user):
            if rtype != "topic":
                continue
            if pattern == "literal":
                assert rname in known | {"*"}, f"{name}: unknown topic {rname}"
            else:  # a prefix must cover declared topics or the streams' own internal ones
                assert rname in {"tier.province.", "tuyen-streams"}, f"{name}: prefix {rname}"


# ---------------------------------------------------------------- ACLs


def station_users(codes: str) -> dict[str, dict[str, Any]]:
    """The KafkaUsers `generate.py --stations` prints."""
    import yaml as _yaml

    text = generator().station_users_yaml(c for c in codes.split(","))
    return {u["metadata"]["name"]: u for u in _yaml.safe_load_all(text) if u}


def test_each_station_may_only_write_and_describe_the_raw_topic() -> None:
    stations = station_users("00004,00007")
    assert set(stations) == {"station-00004", "station-00007"}
    for user in stations.values():
        assert user["spec"]["authentication"]["type"] == "scram-sha-512"
        assert acl_rules(user) == [
            ("topic", "station.changes", "literal", frozenset({"Write", "Describe"}))
        ]


def test_nobody_but_the_stations_writes_the_raw_topic() -> None:
    writers = {
        name
        for name, user in {**users(), **station_users("00004")}.items()
        for rtype, rname, _, ops in acl_rules(user)
        if rtype == "topic" and rname in {"station.changes", "*"} and ops & {"Write", "All"}
    }
    assert writers == {"station-00004"}


def test_record_level_topics_and_the_dlq_have_only_their_readers() -> None:
    """Who may Read what (literal rules): each province's topic its own sink; the DLQ the
    operators and its sink; the national tier its sink and the monitor (freshness)."""
    readers: dict[str, set[str]] = defaultdict(set)
    for name, user in users().items():
        for rtype, rname, pattern, ops in acl_rules(user):
            if rtype == "topic" and "Read" in ops:
                assert pattern == "literal" or rname == "tuyen-streams", (name, rname)
                readers[rname].add(name)
    assert readers["station.changes.dlq"] == {"tuyen-operators", "tuyen-sink-dlq"}
    assert readers["tier.national"] == {"tuyen-sink-national", "tuyen-monitor", "tuyen-operators"}
    assert readers["station.changes"] == {"tuyen-streams"}
    assert "*" not in readers and "changes.valid" not in readers


def test_every_user_uses_scram() -> None:
    for name, user in users().items():
        assert user["spec"]["authentication"]["type"] == "scram-sha-512", name
        assert user["spec"]["authorization"]["type"] == "simple", name


def test_sinks_only_read_their_own_topic_in_their_own_group() -> None:
    sinks = generator().SINKS
    assert set(sinks) == {"national", "aggregates", "dlq", "signoff"}
    for sink, topic in sinks.items():
        rules = acl_rules(users()[f"tuyen-sink-{sink}"])
        assert set(rules) == {
            ("topic", topic, "literal", frozenset({"Read", "Describe"})),
            ("group", f"tuyen-sink-{sink}", "literal", frozenset({"Read"})),
        }


def test_each_province_sink_reads_only_its_own_stream() -> None:
    codes = generator().province_codes()
    assert len(codes) == 34  # today's provinces (Resolution 202/2025/QH15)
    all_users = users()
    readers: dict[str, set[str]] = defaultdict(set)
    for name, user in all_users.items():
        for rtype, rname, pattern, ops in acl_rules(user):
            if rtype == "topic" and "Read" in ops and pattern == "literal":
                readers[rname].add(name)
    for code in codes:
        name = f"tuyen-sink-province-{code}"
        assert set(acl_rules(all_users[name])) == {
            ("topic", f"tier.province.{code}", "literal", frozenset({"Read", "Describe"})),
            ("group", name, "literal", frozenset({"Read"})),
            ("group", f"tuyen-sink-district-{code}", "literal", frozenset({"Read"})),
        }
        assert readers[f"tier.province.{code}"] == {name}


def test_the_monitor_describes_and_reads_no_record_level_topic() -> None:
    rules = acl_rules(users()["tuyen-monitor"])
    reads = {rname for rtype, rname, _, ops in rules if rtype == "topic" and "Read" in ops}
    assert reads == {
        "__consumer_offsets",
        "tier.national",
        "aggregates.live",
        "station.changes.rejections",
    }
    assert ("topic", "*", "literal", frozenset({"Describe"})) in rules
    assert not [r for r in rules if r[3] & {"Write", "Create", "Alter", "All"}]


def test_kafka_acls_script_matches_the_strimzi_users() -> None:
    """Every KafkaUser rule has its kafka-acls.sh line, and nothing more."""
    script = (DEPLOY / "security" / "kafka-acls.sh").read_text(encoding="utf-8")
    lines = [
        shlex.split(line) for line in script.splitlines() if line.strip().startswith('"$ACLS"')
    ]
    from_script = set()
    for argv in lines:
        ops = frozenset(argv[i + 1] for i, a in enumerate(argv) if a == "--operation")
        principal = argv[argv.index("--allow-principal") + 1].removeprefix("User:")
        if "--topic" in argv:
            res = ("topic", argv[argv.index("--topic") + 1])
        elif "--group" in argv:
            res = ("group", argv[argv.index("--group") + 1])
        else:
            res = ("cluster", "")
        pattern = "prefix" if "prefixed" in argv else "literal"
        from_script.add((principal, res[0], res[1], pattern, ops))
    from_users = {(name, *rule) for name, user in users().items() for rule in acl_rules(user)}
    stations = {(n, *rule) for n, u in station_users("$1").items() for rule in acl_rules(u)}
    assert from_script == from_users | stations
    station_lines = [a for a in lines if "User:station-$1" in a]
    assert len(station_lines) == 1


# ---------------------------------------------------------------- workloads


def test_workloads_use_the_tuyen_image_and_their_own_principal() -> None:
    names = set(users())
    for deployment, c in k8s_containers():
        assert is_tuyen_image(c["image"]), deployment
    for deployment, pod, c in workloads():
        env = {e["name"]: e for e in c.get("env", [])}
        if without_kafka(c["command"]):
            assert not [n for n in env if n.startswith("TUYEN_KAFKA_")], deployment
            assert deployment not in names, f"{deployment}: a Kafka principal it never uses"
            continue
        user = env["TUYEN_KAFKA_SASL_USERNAME"]["value"]
        assert user == deployment and user in names, deployment
        assert "TUYEN_KAFKA_SASL_PASSWORD" not in env, deployment  # a file, never the env
        path = env["TUYEN_KAFKA_SASL_PASSWORD_FILE"]["value"]
        assert from_secret(secret_files(pod, c), path) == (user, "password"), deployment
        assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsUser"]
        if deployment.startswith("tuyen-sink-province-"):  # one province, both its stores
            code = deployment.removeprefix("tuyen-sink-province-")
            argv = ["tuyen", "sink", "province", "district", "--province", code]
            assert c["command"] == argv
        elif deployment.startswith("tuyen-sink-"):  # `tuyen sink NAME`, one sink each
            assert c["command"] == ["tuyen", "sink", deployment.removeprefix("tuyen-sink-")]
    assert {d for d, _ in k8s_containers()} >= {
        "tuyen-streams",
        "tuyen-monitor",
        "tuyen-portal",
        *(f"tuyen-sink-{s}" for s in generator().SINKS),
        *(f"tuyen-sink-province-{c}" for c in generator().province_codes()),
        *(f"tuyen-compact-province-{c}" for c in generator().province_codes()),
        "tuyen-compact-national",
        "tuyen-compact-quarantine",
    }


def test_each_sink_writes_its_owners_root_with_its_owners_credentials() -> None:
    """A province's sink gets its province's object-store Secret and nobody else does; the
    DLQ sink the quarantine's; the national and aggregates sinks the national root's."""
    holders: dict[str, set[str]] = defaultdict(set)
    for deployment, _pod, c in workloads():
        for ref in c.get("envFrom", []):
            if "secretRef" in ref and ref["secretRef"]["name"].startswith("tuyen-object-store"):
                holders[ref["secretRef"]["name"]].add(deployment)
    for code in generator().province_codes():
        assert holders[f"tuyen-object-store-province-{code}"] == {
            f"tuyen-sink-province-{code}",
            f"tuyen-compact-province-{code}",  # rewrites its closed months in place
        }
    assert holders["tuyen-object-store-quarantine"] == {
        "tuyen-sink-dlq",
        "tuyen-compact-quarantine",
    }
    assert holders["tuyen-object-store-national"] == {
        "tuyen-sink-national",
        "tuyen-sink-aggregates",
        "tuyen-compact-national",
    }
    (settings,) = [cm for cm in by_kind("ConfigMap") if cm["metadata"]["name"] == "tuyen-settings"]
    data = settings["data"]
    assert "{code}" in data["TUYEN_PROVINCE_ROOT"]
    assert data["TUYEN_RECORD_TOPICS"] == "province"
    roots = {
        data["TUYEN_PROVINCE_ROOT"],
        data["TUYEN_NATIONAL_ROOT"],
        data["TUYEN_QUARANTINE_ROOT"],
    }
    assert len({r.split("://", 1)[1].split("/", 1)[0] for r in roots}) == 3, "one bucket each"


def test_workloads_get_their_trust_anchors_from_secret_volumes() -> None:
    checked = set()
    for name, pod, c in workloads():
        argv = tuple([*c.get("command", []), *c.get("args", [])])
        env = env_values(c)
        files = secret_files(pod, c)
        mounted = {p for p in files if not p.endswith("/*")}
        mounted |= {f"{p[:-2]}/{k}" for p in files if p.endswith("/*") for k in _keys_of(env)}
        assert not missing_anchors(argv, env, mounted.__contains__), name
        if needs_of(argv):
            checked.add(name)
        assert "TUYEN_DEV" not in env, name
        for secret, only in ONLY_FOR.items():
            if not any(argv[: len(o)] == o for o in only):
                assert secret not in env and secret + "_FILE" not in env, f"{name}: {secret}"
        for secret_name, _ in files.values():
            volume = next(
                v for v in pod["volumes"] if v.get("secret", {}).get("secretName") == secret_name
            )
            if secret_name.startswith("tuyen-") and secret_name != "tuyen-cluster-ca-cert":
                assert volume["secret"]["defaultMode"] == 0o440, f"{name}: {secret_name}"
    provinces = {f"tuyen-sink-province-{c}" for c in generator().province_codes()}
    compacts = {f"tuyen-compact-province-{c}" for c in generator().province_codes()}
    assert checked == {
        "tuyen-streams",
        "tuyen-monitor",
        "tuyen-portal",
        "tuyen-sink-signoff",
        "tuyen-sink-dlq",
        "tuyen-compact-quarantine",
        *provinces,
        *compacts,
    }
    for name, pod, c in workloads():  # the writers' key, from its Secret (never the pseudonym key)
        if "TUYEN_ERASURE_KEY_FILE" in env_values(c):
            assert from_secret(secret_files(pod, c), env_values(c)["TUYEN_ERASURE_KEY_FILE"]) == (
                "tuyen-erasure-key",
                "key",
            ), name
    (worker,) = [(p, c) for n, p, c in workloads() if n == "tuyen-streams"]
    files = secret_files(*worker)
    env = env_values(worker[1])
    assert from_secret(files, env["TUYEN_PSEUDONYM_KEY_FILE"]) == ("tuyen-pseudonym-key", "key")
    assert from_secret(files, env["TUYEN_KEY_REGISTRY"]) == ("tuyen-key-registry", "registry.json")
    (portal,) = [(p, c) for n, p, c in workloads() if n == "tuyen-portal"]
    files, env = secret_files(*portal), env_values(portal[1])
    assert from_secret(files, env["TUYEN_PORTAL_SESSION_KEY_FILE"]) == (
        "tuyen-portal-session-key",
        "key",
    )
    assert from_secret(files, env["TUYEN_ACCESS_LOG_KEY_FILE"]) == ("tuyen-access-log-key", "key")
    for name, pod, c in workloads():  # the approvers' registry: where decisions are checked
        if name in {"tuyen-portal", "tuyen-sink-signoff"}:
            assert from_secret(secret_files(pod, c), env_values(c)["TUYEN_APPROVER_KEYS"]) == (
                "tuyen-approver-keys",
                "approvers.json",
            ), name
    for cm in by_kind("ConfigMap"):
        for secret in (*SECRET_VARS, "TUYEN_DEV"):
            assert secret not in cm.get("data", {})


def _compaction_jobs() -> dict[str, tuple[list[str], str, bool]]:
    """Compaction CronJob → (its command, its root's store Secret, whether it holds the
    erasure key)."""
    jobs = {
        f"tuyen-compact-province-{c}": (
            ["tuyen", "compact", "--province", c],
            f"tuyen-object-store-province-{c}",
            True,
        )
        for c in generator().province_codes()
    }
    jobs["tuyen-compact-national"] = (
        ["tuyen", "compact", "--owner", "national"],
        "tuyen-object-store-national",
        False,  # pseudonyms only: the national root's register needs no key
    )
    jobs["tuyen-compact-quarantine"] = (
        ["tuyen", "compact", "--owner", "quarantine"],
        "tuyen-object-store-quarantine",
        True,  # dead letters carry ids
    )
    return jobs


def test_each_root_is_compacted_by_its_own_least_privileged_cronjob() -> None:
    """A CronJob per root: `tuyen compact --province <code>` for each province's, `--owner
    national|quarantine` for the others, with that root's store credentials alone; the ones
    rewriting record rows or dead letters get the erasure key from ``tuyen-erasure-key``
    mounted as a file (the register applies). No pseudonym key nor any other secret, no
    Kafka principal, no service account token, non-root like the sinks, never two runs of a
    job at once, and the jobs do not all start at the same minute."""
    jobs = {doc["metadata"]["name"]: doc for doc in by_kind("CronJob")}
    expected = _compaction_jobs()
    assert set(jobs) == set(expected)
    schedules = set()
    for name, (command, store_secret, erases) in expected.items():
        job = jobs[name]
        assert job["spec"]["concurrencyPolicy"] == "Forbid"
        schedules.add(job["spec"]["schedule"])
        pod = pod_spec(job)
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == pod["securityContext"]["fsGroup"] != 0
        (c,) = pod["containers"]
        assert c["command"] == command
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        env, files = env_values(c), secret_files(pod, c)
        if erases:
            assert env == {"TUYEN_ERASURE_KEY_FILE": "/run/secrets/tuyen/erasure-key/key"}
            assert from_secret(files, env["TUYEN_ERASURE_KEY_FILE"]) == ("tuyen-erasure-key", "key")
            assert {s for s, _ in files.values()} == {"tuyen-erasure-key"}  # no other secret
        else:
            assert env == {} and files == {}, name
        refs = [r for r in c["envFrom"] if "secretRef" in r]
        assert [r["secretRef"]["name"] for r in refs] == [store_secret]
    assert len(schedules) == len(expected), "the jobs do not all start at once"


def test_the_manifest_checks_catch_a_compaction_job_given_too_much() -> None:
    """The checks above fail on a CronJob that holds the pseudonym key or lacks the erasure
    key (so they are not vacuous)."""
    from tests.unit.deploy.test_deploy_manifests import ONLY_FOR

    good = generator().province_compact_cronjob("01", 0)
    c = pod_spec(good)["containers"][0]
    argv = tuple(c["command"])
    for secret, only in ONLY_FOR.items():  # the rule the workloads are held to
        allowed = any(argv[: len(o)] == o for o in only)
        assert allowed == (secret == "TUYEN_ERASURE_KEY"), secret
    files = secret_files(pod_spec(good), c)
    mounted = {p for p in files if not p.endswith("/*")}
    assert not missing_anchors(argv, env_values(c), mounted.__contains__)
    assert missing_anchors(argv, {}, mounted.__contains__) == [
        "TUYEN_ERASURE_KEY: not read from a mounted secret (None)"
    ]


def test_facility_registry_comes_from_its_configmap(tmp_path: Path) -> None:
    """TUYEN_FACILITIES names a file of the ConfigMap mounted into the worker and the portal,
    and the shipped content is a registry they can load."""
    from schemas.facilities import load_hierarchy

    readers = set()
    for name, pod, c in workloads():
        path = env_values(c).get("TUYEN_FACILITIES")
        if path is None:
            continue
        volumes = {v["name"]: v for v in pod["volumes"]}
        (mount,) = [m for m in c["volumeMounts"] if path.startswith(m["mountPath"] + "/")]
        cm_name = volumes[mount["name"]]["configMap"]["name"]
        (cm,) = [cm for cm in by_kind("ConfigMap") if cm["metadata"]["name"] == cm_name]
        shipped = tmp_path / f"{name}.csv"
        shipped.write_text(cm["data"][path.rpartition("/")[2]], encoding="utf-8")
        load_hierarchy(shipped)  # raises on a file they would refuse
        readers.add(name)
    assert readers == {"tuyen-streams", "tuyen-portal"}


def test_the_portal_reads_the_store_read_only_and_keeps_its_state() -> None:
    (deployment,) = [d for d in by_kind("Deployment") if d["metadata"]["name"] == "tuyen-portal"]
    pod = deployment["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    # the store: object-store credentials of its own (read-only), never the sinks' (writing)
    refs = {e["secretRef"]["name"] for e in c["envFrom"] if "secretRef" in e}
    assert refs == {"tuyen-portal-object-store"}
    sink_refs = {
        e["secretRef"]["name"]
        for name, _, sc in workloads()
        if name.startswith("tuyen-sink-")
        for e in sc.get("envFrom", [])
        if "secretRef" in e
    }
    assert sink_refs and not refs & sink_refs
    # its state (accounts, sessions, the access log) on a claim of its own, one writer
    state = env_values(c)["TUYEN_PORTAL_STATE_DIR"]
    claims = {
        v["name"]: v["persistentVolumeClaim"]["claimName"]
        for v in pod["volumes"]
        if "persistentVolumeClaim" in v
    }
    (mount,) = [m for m in c["volumeMounts"] if m["name"] in claims]
    assert Path(state).is_relative_to(mount["mountPath"]) and state != mount["mountPath"]
    assert claims[mount["name"]] in {
        p["metadata"]["name"] for p in by_kind("PersistentVolumeClaim")
    }
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    (service,) = [s for s in by_kind("Service") if s["metadata"]["name"] == "tuyen-portal"]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


def test_workers_hpa_never_exceeds_raw_partitions() -> None:
    from schemas.topics import RAW, topic_specs

    raw = next(s for s in topic_specs() if s.name == RAW)
    (hpa,) = by_kind("HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "tuyen-streams"
    assert hpa["spec"]["maxReplicas"] <= raw.partitions


def test_monitor_is_scraped() -> None:
    (svc_mon,) = by_kind("ServiceMonitor")
    monitor = next(d for d in by_kind("Deployment") if d["metadata"]["name"] == "tuyen-monitor")
    labels = monitor["spec"]["template"]["metadata"]["labels"]
    for key, value in svc_mon["spec"]["selector"]["matchLabels"].items():
        assert labels[key] == value
    pod = monitor["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    token = from_secret(secret_files(pod, c), env_values(c)["TUYEN_MONITOR_TOKEN_FILE"])
    (endpoint,) = svc_mon["spec"]["endpoints"]
    auth = endpoint["authorization"]
    assert auth["type"] == "Bearer"
    assert (auth["credentials"]["name"], auth["credentials"]["key"]) == token
    # probes need no token (and get no data); annotation scraping could not send one
    assert c["readinessProbe"]["httpGet"]["path"] == c["livenessProbe"]["httpGet"]["path"]
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert "annotations" not in monitor["spec"]["template"]["metadata"]


# ---------------------------------------------------------------- metrics


_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}


def exported_metrics() -> dict[str, set[str]]:
    """Series name → label names, from the monitor's and the sinks' own collectors."""
    from sinks.metrics import SINK_METRIC_NAMES
    from streams.monitor.metrics import SnapshotCollector
    from tests.unit.streams.test_alert_rules import full_snapshot

    collector = SnapshotCollector(full_snapshot, lambda: 0)
    result: dict[str, set[str]] = {}
    for family in collector.collect():
        for sample in family.samples:
            result.setdefault(sample.name, set()).update(sample.labels)
        for suffix in _SUFFIXES.get(family.type, ("",)):
            result.setdefault(family.name + suffix, set())
    for name in SINK_METRIC_NAMES:
        result.setdefault(name, {"tier"})
    return result


KNOWN_LABELS = {
    "group",
    "topic",
    "partition",
    "reason",
    "stage",
    "direction",
    "tier",
    "le",
    "node",
    "state",
    "instance",
}
PROM_BUILTIN = {"up"}


def promql_exprs() -> list[str]:
    dash = json.loads((MONITORING / "grafana/dashboards/tuyen.json").read_text(encoding="utf-8"))
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    exprs += [v["query"]["query"] for v in dash["templating"]["list"] if v["type"] == "query"]
    alerts = load_yaml(MONITORING / "alerts.yml")[0]
    exprs += [r["expr"] for g in alerts["groups"] for r in g["rules"]]
    return exprs


def test_dashboard_has_the_operator_panels() -> None:
    dash = json.loads((MONITORING / "grafana/dashboards/tuyen.json").read_text(encoding="utf-8"))
    assert len({p["id"] for p in dash["panels"]}) == len(dash["panels"])
    text = " ".join(t["expr"] for p in dash["panels"] for t in p.get("targets", []))
    for metric in (
        "tuyen_consumer_lag_messages",
        "tuyen_consumer_lag_seconds",
        "tuyen_consumer_group_status",
        "tuyen_dlq_records_total",
        "tuyen_freshness_seconds_bucket",
        "tuyen_stage_events_total",
        "kafka_server_replicamanager_underreplicatedpartitions",
        "kafka_controller_kafkacontroller_activecontrollercount",
    ):
        assert metric in text
    for p in dash["panels"]:
        for t in p["targets"]:
            assert t["datasource"]["uid"] == "tuyen-prometheus"


@pytest.mark.parametrize("expr", promql_exprs())
def test_every_queried_metric_is_exported(expr: str) -> None:
    exported = exported_metrics()
    no_strings = re.sub(r'"[^"]*"', '""', expr)
    names = set(re.findall(r"\b(tuyen_[a-z0-9_]+)\b", no_strings))
    kafka = set(re.findall(r"\b(kafka_[a-z0-9_]+)\b", no_strings))
    assert names or kafka or expr.split("{")[0].strip() in PROM_BUILTIN, expr
    assert names <= set(exported), f"not exported by the monitor: {names - set(exported)}"
    assert kafka <= jmx_metric_names(), f"not made by the JMX exporter rules: {kafka}"
    for grouping in re.findall(r"\bby \(([^)]*)\)", no_strings):
        labels = {x.strip() for x in grouping.split(",")}
        assert labels <= KNOWN_LABELS, expr
    for label in re.findall(r"[{,]\s*([a-z_]+)\s*(?:=~|!=|=)", no_strings):
        assert label in KNOWN_LABELS | {"job"}, f"{label} in {expr}"


def jmx_metric_names() -> set[str]:
    """What the JMX exporter rules make of the MBeans the alerts and dashboard use."""
    from streams.monitor.brokers import JMX_METRICS

    return set(JMX_METRICS) | {
        "kafka_server_brokertopicmetrics_messagesin_total",
        "kafka_server_replicamanager_underminisrpartitioncount",
    }


def test_exported_labels_are_the_known_ones() -> None:
    exported = exported_metrics()
    assert "tuyen_consumer_group_status" in exported  # the collector names still match
    from streams.monitor import metrics

    source = Path(metrics.__file__).read_text(encoding="utf-8")
    for label in KNOWN_LABELS - {"le", "instance"}:  # Prometheus's own
        assert f'"{label}"' in source, label


def test_prometheus_rule_is_the_alerts_file() -> None:
    (rule,) = by_kind("PrometheusRule")
    assert rule["spec"] == load_yaml(MONITORING / "alerts.yml")[0]
    for group in rule["spec"]["groups"]:
        for r in group["rules"]:
            assert r["labels"]["severity"] in {"warning", "critical"}
            assert r["annotations"]["summary"]


def test_brokers_export_their_own_metrics_everywhere() -> None:
    """One JMX exporter rule file for the local cluster, compose and Strimzi; Prometheus
    scrapes the brokers as job "kafka" in both deployments (the broker alerts use it)."""
    rules = (DEPLOY / "broker" / "jmx-exporter.yaml").read_text(encoding="utf-8")
    (kafka,) = by_kind("Kafka")
    ref = kafka["spec"]["kafka"]["metricsConfig"]["valueFrom"]["configMapKeyRef"]
    cm = next(c for c in by_kind("ConfigMap") if c["metadata"]["name"] == ref["name"])
    assert cm["data"][ref["key"]] == rules
    (pod_mon,) = by_kind("PodMonitor")
    assert pod_mon["spec"]["selector"]["matchLabels"]["strimzi.io/cluster"] == "tuyen"
    relabel = pod_mon["spec"]["podMetricsEndpoints"][0]["relabelings"][0]
    assert (relabel["targetLabel"], relabel["replacement"]) == ("job", "kafka")
    compose = load_yaml(DEPLOY / "compose" / "docker-compose.yml")[0]
    for name in ("kafka-1", "kafka-2", "kafka-3"):
        svc = compose["services"][name]
        assert (
            "-javaagent:/opt/jmx-agent/jmx_prometheus_javaagent-1.0.1.jar=9404:"
            in (svc["environment"]["KAFKA_OPTS"])
        )
        assert "../broker/jmx-exporter.yaml:/opt/jmx-config/jmx-exporter.yaml:ro" in svc["volumes"]
    prom = load_yaml(MONITORING / "prometheus.yml")[0]
    kafka_job = next(j for j in prom["scrape_configs"] if j["job_name"] == "kafka")
    assert kafka_job["static_configs"][0]["targets"] == [f"kafka-{i}:9404" for i in (1, 2, 3)]
