"""Local emulators of the APIs crm-sync talks to, for tests, `crm-sync demo` and `crm-sync sandbox`.

One subpackage per API (`enrichment`, `hubspot`, `salesforce`), each a Starlette app that keeps
its data in memory and counts what it received; shared here are the deterministic people they
all answer from (`people`), the three started together (`world`) and the auth walk-through
(`auth_guide`). The sandbox states each API's facts itself and takes from the engine only
logging, the clock and the embedded server, so it can catch the client misreading an API; only
the `demo` and `sandbox` commands import it (`tests/unit/test_sandbox_boundary.py`).
"""
