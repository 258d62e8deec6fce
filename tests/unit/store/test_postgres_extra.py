"""PostgreSQL is an extra: without psycopg a postgresql URL is a config error naming the extra."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from crm_sync.errors import ConfigError
from crm_sync.store.opening import open_store

ROOT = Path(__file__).resolve().parents[3]


def test_psycopg_is_an_extra_not_a_dependency() -> None:
    """SQLite, the default, installs no PostgreSQL driver; `crm-sync[postgres]` brings it."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not [d for d in project["dependencies"] if d.startswith("psycopg")]
    assert any(d.startswith("psycopg") for d in project["optional-dependencies"]["postgres"])


def test_a_postgresql_url_without_the_driver_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The error names the key and the install command, before any connection is tried."""
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg now fails
    with pytest.raises(ConfigError) as info:
        open_store("postgresql://crm@127.0.0.1:5432/crm", key="state.url")
    assert "state.url" in str(info.value)
    assert "crm-sync[postgres]" in str(info.value)


def test_the_cli_exits_2_naming_the_extra(tmp_path: Path) -> None:
    """`crm-sync status` on a PostgreSQL store without psycopg: exit 2, no traceback."""
    script = (
        "import sys; sys.modules['psycopg'] = None\n"
        "from crm_sync.cli import main\n"
        "sys.exit(main(['status', '--state-url', 'postgresql://crm@127.0.0.1:5432/crm']))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr
    assert "crm-sync[postgres]" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
