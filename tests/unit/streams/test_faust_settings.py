"""The worker's faust app takes its settings from StreamsConfig alone: faust's own
environment variables (``APP_*``, ``TABLE_*``, …) would override what ``new_app`` passes —
e.g. ``APP_WEB_TABLES_ENABLED=true`` turned faust's table views (the records' state) back on."""

from __future__ import annotations

import base64
import os

import pytest
from pydantic import SecretStr

from schemas.kafka import KafkaConnection
from streams.config import StreamsConfig
from streams.faustio import new_app


def test_faust_environment_variables_do_not_override_the_worker_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    for name, value in {
        "APP_WEB_TABLES_ENABLED": "true",
        "APP_WEB_ROUTER_ENABLED": "true",
        "APP_WEB_METRICS_ENABLED": "true",
        "APP_BROKER_URL": "kafka://attacker.example:9092",
        "BROKER_URL": "kafka://attacker.example:9092",
        "TABLE_STANDBY_REPLICAS": "0",
    }.items():
        monkeypatch.setenv(name, value)
    config = StreamsConfig(
        kafka=KafkaConnection(bootstrap="127.0.0.1:19092"),
        pseudonym_key=SecretStr(base64.b64encode(os.urandom(32)).decode()),
        development=True,
        data_dir=str(tmp_path),
    )
    conf = new_app(config).conf
    assert not conf.web_tables_enabled
    assert not conf.web_router_enabled
    assert not conf.web_metrics_enabled
    assert [str(u) for u in conf.broker] == ["kafka://127.0.0.1:19092"]
    assert conf.table_standby_replicas == 1  # faust's default, not the environment's
