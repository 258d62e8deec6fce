"""`crm-sync check` against the enrichment emulator, through the real CLI entry point."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import structlog
from pydantic import SecretStr

from crm_sync.cli import main
from crm_sync.commands.check import CheckLine, check_enrichment, exit_code
from crm_sync.config import Config, EnrichmentConfig
from crm_sync.enrichment.client import EnrichmentClient
from crm_sync.enrichment.ratelimit import SlidingWindowLimiter, reset_registry
from crm_sync.exit_codes import EXIT_TRANSIENT
from crm_sync.http_server import BackgroundServer
from crm_sync.sandbox.enrichment import EnrichmentEmulator

KEY = "sandbox-enrichment-key"


@pytest.fixture(autouse=True)
def _isolated_logging() -> Iterator[None]:
    """`check` configures logging on the captured stderr; later tests must not inherit it."""
    yield
    structlog.reset_defaults()
    reset_registry()


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    """One emulator on a real socket for the whole module."""
    with BackgroundServer(EnrichmentEmulator(balance=4321).app) as server:
        yield f"{server.url}/api/v1"


def enrichment_line(out: str) -> str:
    """The `enrichment:` line of check's output (the store and schedule lines come first)."""
    return next(line for line in out.splitlines() if line.startswith("enrichment:"))


def write_config(tmp_path: Path, base_url: str, key: str, retries: int = 0) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(
        f"enrichment:\n  base_url: {base_url}\n  api_key: {key}\n  max_retries: {retries}\n",
        encoding="utf-8",
    )
    return str(path)


def test_check_ok_prints_workspace_and_balance(
    tmp_path: Path, base_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A config with only `enrichment:` and a good key prints OK with workspace and balance."""
    code = main(["check", "--config", write_config(tmp_path, base_url, KEY)])
    out, err = capsys.readouterr()
    assert code == 0
    expected = "enrichment: OK workspace=ws-sandbox balance=4321 credits"
    assert enrichment_line(out).startswith(expected)
    assert base_url in out
    assert KEY not in out + err


def test_check_prints_the_dialect(
    tmp_path: Path, base_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`check` says which API version it spoke (v1 by default, v2 when configured)."""
    assert main(["check", "--config", write_config(tmp_path, base_url, KEY)]) == 0
    assert "api_version=v1" in enrichment_line(capsys.readouterr().out)
    v2_url = base_url.replace("/api/v1", "/api/v2")
    path = write_config(tmp_path, v2_url, KEY)
    Path(path).write_text(Path(path).read_text() + "  api_version: v2\n", encoding="utf-8")
    assert main(["check", "--config", path]) == 0
    line = enrichment_line(capsys.readouterr().out)
    assert line.startswith(
        "enrichment: OK workspace=ws-sandbox balance=4321 credits api_version=v2"
    )
    assert v2_url in line


def test_check_refused_key_exits_3(
    tmp_path: Path, base_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A refused key prints the FAILED line naming the API code and exits 3."""
    bad_key = "refused-canary-key-42"
    code = main(["check", "--config", write_config(tmp_path, base_url, bad_key)])
    out, err = capsys.readouterr()
    assert code == 3
    assert enrichment_line(out) == (
        "enrichment: FAILED the API key was refused (error.api.key) (api_version=v1)"
    )
    assert bad_key not in out + err


def test_check_unreachable_exits_transient(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A base URL nobody listens on prints why, with the URL, and exits 5 (retry later)."""
    with BackgroundServer(EnrichmentEmulator().app) as server:
        dead_url = f"{server.url}/api/v1"
    code = main(["check", "--config", write_config(tmp_path, dead_url, KEY)])
    out, err = capsys.readouterr()
    assert code == EXIT_TRANSIENT
    assert enrichment_line(out).startswith(
        f"enrichment: FAILED cannot reach the enrichment API at {dead_url}"
    )
    assert KEY not in out + err


def test_check_out_of_credits_exits_4() -> None:
    """A 402 on the credits call is a FAILED line with the credits exit code."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/verify"):
            return httpx.Response(200, json={"workspace_id": "ws"})
        return httpx.Response(402, json={"code": "error.credits", "message": "none"})

    config = Config(enrichment=EnrichmentConfig(api_key=SecretStr("k-1234")))

    def factory(cfg: Config) -> EnrichmentClient:
        return EnrichmentClient.from_config(
            cfg.enrichment,
            transport=httpx.MockTransport(handler),
            limiter=SlidingWindowLimiter(10, 1.0),
        )

    line = check_enrichment(config, factory)
    assert not line.ok
    assert line.exit_code == 4
    assert line.render().startswith("enrichment: FAILED the enrichment account is out of credits")


def test_exit_code_is_the_most_severe() -> None:
    """Auth (3) outranks unreachable (1); all OK is 0."""
    ok = CheckLine("a", True, "fine")
    down = CheckLine("b", False, "down", 1)
    refused = CheckLine("c", False, "refused", 3)
    assert exit_code([ok]) == 0
    assert exit_code([ok, down, refused]) == 3
    assert exit_code([]) == 0
