"""The README's quick start runs as written, in a fresh virtual environment."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def quickstart_commands() -> list[str]:
    """The commands of the first code block after the `quickstart` marker, comments dropped."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- quickstart.*?-->\s*```bash\n(.*?)```", text, re.S)
    assert block, "README.md has no quick-start block"
    return [line.split("  #")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def _project_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return [f for f in listed.stdout.splitlines() if (ROOT / f).is_file()]


@pytest.mark.slow
def test_quickstart_runs_as_written(tmp_path: Path) -> None:
    """Install into a new venv and run the demo, exactly as the README says."""
    if shutil.which("git") is None:
        pytest.skip("git is needed to list the project's files")
    checkout = tmp_path / "crm-sync"
    for name in _project_files():
        target = checkout / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    commands = quickstart_commands()
    assert any("pip install" in c for c in commands)
    assert any("crm-sync demo" in c for c in commands)
    for command in commands:
        result = subprocess.run(
            ["bash", "-c", command],
            cwd=checkout,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        output = f"{command}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
        assert result.returncode == 0, output
    assert "emails_written" in result.stdout
    assert "->" in result.stdout
