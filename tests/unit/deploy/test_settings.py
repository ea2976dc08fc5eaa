"""Settings: every secret can come from a file (``<VAR>_FILE``), never from both places, and a
bad value is reported with the variable's name."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from deploy.cli.root import app
from deploy.exceptions import ConfigError
from deploy.settings import SECRET_FIELDS, Settings, env_name


@pytest.mark.parametrize("field", SECRET_FIELDS)
def test_every_secret_reads_from_a_file(
    field: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    var = env_name(field)
    path = tmp_path / field
    path.write_text("  value-from-a-secret-mount\n")
    monkeypatch.setenv(var + "_FILE", str(path))
    monkeypatch.delenv(var, raising=False)
    value = getattr(Settings.load(), field)
    assert value.get_secret_value() == "value-from-a-secret-mount"
    assert "value-from" not in repr(Settings.load())

    monkeypatch.setenv(var, "inline")
    with pytest.raises(ConfigError, match=f"both {var} and {var}_FILE"):
        Settings.load()
    monkeypatch.delenv(var)
    path.write_text("\n")
    with pytest.raises(ConfigError, match=f"{var}_FILE=.* is empty"):
        Settings.load()
    path.unlink()
    with pytest.raises(ConfigError, match=f"{var}_FILE=.* cannot be read"):
        Settings.load()


def test_no_secret_has_a_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for field in SECRET_FIELDS:
        monkeypatch.delenv(env_name(field), raising=False)
        monkeypatch.delenv(env_name(field) + "_FILE", raising=False)
    s = Settings.load()
    assert all(getattr(s, f) is None for f in SECRET_FIELDS)


def test_dev_mode_is_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TUYEN_DEV", raising=False)
    assert Settings.load().dev is False
    assert Settings.load(dev=True).dev is True
    monkeypatch.setenv("TUYEN_DEV", "1")
    assert Settings.load().dev is True


def test_a_bad_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUYEN_BROKER_MODE", "zookeeper")
    with pytest.raises(ConfigError, match="TUYEN_BROKER_MODE"):
        Settings.load()
    result = CliRunner().invoke(app, ["topics", "list"])
    assert result.exit_code == 2
    assert "TUYEN_BROKER_MODE" in result.output
