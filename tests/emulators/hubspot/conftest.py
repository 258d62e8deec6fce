"""HubSpot fixtures, written once in tests/support/hubspot.py."""

from tests.support.hubspot import clock, connect, serve_emulator

__all__ = ["clock", "connect", "serve_emulator"]
