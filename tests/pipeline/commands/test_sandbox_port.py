"""`crm-sync sandbox NAME --port N` serves NAME on N (not on N+1 or N+2)."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("service", ["enrichment", "hubspot", "salesforce"])
def test_sandbox_serves_the_named_emulator_on_the_given_port(service: str) -> None:
    """The URL printed for the service uses exactly the port asked for."""
    port = _free_port()
    with subprocess.Popen(
        [sys.executable, "-m", "crm_sync.cli", "sandbox", service, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            lines = [proc.stdout.readline() for _ in range(2)]
            with socket.create_connection(("127.0.0.1", port), timeout=5):
                pass
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    assert f"http://127.0.0.1:{port}" in lines[1], lines
