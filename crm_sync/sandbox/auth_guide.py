"""What `crm-sync sandbox` prints so a user can try every CRM auth flow against the emulators.

The JWT bearer flow needs a key pair: the emulator trusts the certificate of the process's
generated pair (`salesforce.keys.sandbox_key_pair`), and the private key is written to a file
readable by its owner only, named in the output and in the `private_key_file` of the example.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from crm_sync.sandbox.salesforce.keys import sandbox_key_pair
from crm_sync.sandbox.world import SandboxWorld


def write_key_pair(directory: Path | None = None) -> tuple[Path, Path]:
    """The sandbox's JWT private key and certificate as PEM files (0600); their paths."""
    folder = directory or Path(tempfile.mkdtemp(prefix="crm-sync-sandbox-"))
    pair = sandbox_key_pair()
    key, cert = folder / "jwt-private-key.pem", folder / "jwt-certificate.pem"
    key.write_text(pair.private_key, encoding="ascii")
    os.chmod(key, 0o600)
    cert.write_text(pair.certificate, encoding="ascii")
    return key, cert


def salesforce_flows(world: SandboxWorld, key_file: Path) -> dict[str, dict[str, Any]]:
    """`settings` auth keys of each Salesforce flow, the JWT one reading `key_file`."""
    url = world.servers["salesforce"].url
    flows = {f: world.salesforce.auth_settings(url, f) for f in ("client_credentials", "password")}
    jwt = world.salesforce.auth_settings(url, "jwt")
    del jwt["private_key"]
    flows["jwt"] = {**jwt, "private_key_file": str(key_file)}
    flows["session"] = world.salesforce.auth_settings(url, "session")
    return flows


def auth_lines(world: SandboxWorld, wanted: tuple[str, ...], key_file: Path) -> list[str]:
    """Lines naming each flow's credentials on the emulators that are served."""
    lines: list[str] = []
    if "hubspot" in wanted:
        app = world.hubspot.oauth
        lines += [
            "hubspot OAuth app (settings auth: oauth):",
            f"  client_id: {app.client_id}",
            f"  client_secret: {app.client_secret}",
            f"  refresh_token: {app.refresh_token}",
            f"  access tokens last {int(app.access_token_ttl)} s",
        ]
    if "salesforce" in wanted:
        sf = world.salesforce
        ttl = sf.sessions.ttl
        lines += [
            "salesforce OAuth app (token endpoint /services/oauth2/token):",
            f"  consumer key: {sf.oauth_app.consumer_key}",
            f"  jwt: username {sf.username}, private key {key_file}",
            f"    (certificate the org trusts: {key_file.with_name('jwt-certificate.pem')})",
            f"  client_credentials: consumer secret {sf.oauth_app.consumer_secret}, "
            f"runs as {sf.oauth_app.run_as}",
            f"  sessions from a login expire after {ttl:g} s" if ttl else "  sessions never expire",
        ]
    return lines


def example_settings(world: SandboxWorld, key_file: Path) -> dict[str, Any]:
    """Every flow's `settings` keys, for the YAML printed after the config."""
    return {
        "hubspot": {"oauth": world.hubspot.auth_settings("oauth")},
        "salesforce": salesforce_flows(world, key_file),
    }
