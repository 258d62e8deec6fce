"""Canary: the secrets of every auth flow (private key, consumer secret, client secret, refresh
token, the JWT assertion, every access token and session issued) never reach a DEBUG log line,
an error message, a repr or the metrics, even when a server echoes what it was sent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from crm_sync.config import SourceConfig
from crm_sync.errors import AuthError
from crm_sync.http_server import BackgroundServer
from crm_sync.outputs.metrics import Metrics
from crm_sync.pipeline.cycle import run_cycle
from crm_sync.sandbox.salesforce.keys import sandbox_key_pair
from crm_sync.sandbox.world import SandboxWorld, WorldOptions
from crm_sync.wiring import connector_for
from tests.pipeline.conftest import context, make_config

ENV = {
    "SF_PRIVATE_KEY": "private_key",
    "SF_CONSUMER_SECRET": "consumer_secret",
    "HS_CLIENT_SECRET": "client_secret",
    "HS_REFRESH_TOKEN": "refresh_token",
}


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()


@pytest.fixture
def world() -> Iterator[SandboxWorld]:
    options = WorldOptions(hubspot_contacts=30, salesforce_contacts=30, completion_delay=0.02)
    with SandboxWorld(options) as started:
        started.salesforce.expire_sessions_at("/composite/sobjects")  # renewals issue more
        started.hubspot.expire_tokens_at("/batch/update")
        yield started


def sources(world: SandboxWorld) -> list[dict[str, Any]]:
    return [
        world.hubspot_source(auth="oauth"),
        world.salesforce_source("sf-jwt", auth="jwt"),
        world.salesforce_source("sf-cc", auth="client_credentials"),
    ]


def static_secrets(world: SandboxWorld) -> list[str]:
    """The configured secrets, the PEM's body lines one by one as well."""
    pem = sandbox_key_pair().private_key
    lines = [line for line in pem.splitlines() if len(line) >= 40 and "PRIVATE" not in line]
    app, hub = world.salesforce.oauth_app, world.hubspot.oauth
    return [pem.strip(), *lines, app.consumer_secret, hub.client_secret, hub.refresh_token]


def issued_secrets(world: SandboxWorld) -> list[str]:
    """Every session and access token the emulators handed out."""
    return [*world.salesforce.sessions.history, *world.hubspot.oauth.issued_tokens()]


def test_debug_run_of_every_flow_logs_no_secret(world: SandboxWorld, tmp_path: Path) -> None:
    """A DEBUG `--once` with OAuth HubSpot, JWT and client credentials Salesforce, with tokens
    renewed mid-run: no configured or issued secret in stdout or stderr."""
    config = world.config_dict(f"sqlite:///{tmp_path / 's.db'}", sources=sources(world))
    env = dict(os.environ, CRM_SYNC_LOG_LEVEL="debug")
    for source in config["sources"]:
        for variable, key in ENV.items():
            if key in source["settings"]:
                env[variable] = source["settings"][key]
                source["settings"][key] = "${" + variable + "}"
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [sys.executable, "-m", "crm_sync.cli", "--once", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    events = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert any(e["level"] == "debug" for e in events)
    assert world.salesforce.calls["token"] >= 3  # two logins and at least one renewal
    assert world.hubspot.calls["oauth_token"] == 2  # the first token and one after the 401
    secrets = static_secrets(world) + issued_secrets(world)
    assert len(secrets) >= 10
    output = result.stdout + result.stderr
    for secret in secrets:
        assert secret not in output


def test_reprs_and_metrics_carry_no_secret(world: SandboxWorld, tmp_path: Path) -> None:
    """After a cycle on every flow, no secret in the reprs of config, context and connectors,
    nor in the Prometheus exposition of the API call counters."""
    config = make_config(world, tmp_path, sources=sources(world))
    metrics = Metrics()
    with context(config) as ctx:
        report = run_cycle(ctx)
        assert report.exit_code == 0, report.as_dict()
        unbind = metrics.bind_context(ctx)
        exposition = metrics.render().decode()
        unbind()
        texts = [exposition, repr(ctx), repr(config), *map(repr, ctx.connectors.values())]
        for connector in ctx.connectors.values():
            texts += [repr(connector.settings), repr(getattr(connector, "api", None))]
            texts += [repr(getattr(connector, "auth", None))]
    assert 'kind="login"' in exposition
    assert 'kind="session_renewed"' in exposition
    assert 'kind="token_refresh_after_401"' in exposition
    for secret in static_secrets(world) + issued_secrets(world):
        for text in texts:
            assert secret not in text


async def _echoing_token_endpoint(request: Request) -> JSONResponse:
    """A token endpoint that quotes, in its error, the whole form it was sent."""
    body = (await request.body()).decode()
    error = {"error": "invalid_client", "error_description": f"you sent {body}"}
    if request.url.path.startswith("/oauth/v1"):
        error = {"status": "BAD_REFRESH_TOKEN", "message": f"you sent {body}"}
    return JSONResponse(error, status_code=400)


def test_a_token_endpoint_echoing_the_request_does_not_leak(tmp_path: Path) -> None:
    """A hostile token endpoint quotes the form it got: the error texts mask every secret."""
    echo = Starlette(
        routes=[
            Route("/services/oauth2/token", _echoing_token_endpoint, methods=["POST"]),
            Route("/oauth/v1/token", _echoing_token_endpoint, methods=["POST"]),
        ]
    )
    pem = sandbox_key_pair().private_key
    secrets = ["Echo-C0nsumer-Secret", "Echo-Client-Secret", "na1-echo-refresh-token"]
    with BackgroundServer(echo) as server:
        configs = [
            ("salesforce", {"consumer_key": "k", "consumer_secret": secrets[0]}),
            ("salesforce", {"consumer_key": "k", "username": "u", "private_key": pem}),
            (
                "hubspot",
                {"client_id": "c", "client_secret": secrets[1], "refresh_token": secrets[2]},
            ),
        ]
        for connector_name, settings in configs:
            key = "base_url" if connector_name == "hubspot" else "login_url"
            source = SourceConfig(
                name=f"echo-{connector_name}",
                connector=connector_name,
                settings={**settings, key: server.url, "max_retries": 0},
                fields={"email": "email" if connector_name == "hubspot" else "Email"},
            )
            connector = connector_for(source)
            with pytest.raises(AuthError) as info:
                connector.read(["0035g0000000001AAA" if connector_name != "hubspot" else "1"])
            text = str(info.value)
            assert "you sent" in text
            for secret in [*secrets, pem.strip(), *pem.splitlines()[1:3]]:
                assert secret not in text
            assert "assertion=" not in text or "assertion=***" in text
            connector.close()
