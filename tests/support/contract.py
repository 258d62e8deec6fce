"""The connector contract's set-up, written once for every connector the suite runs it against.

`connectors.testing` (public, for plugin authors) holds the checks; this module holds what the
suite's own harnesses share: building a connector by name through the registry and wiring, as
a configured source's would be, and serving an emulator for the length of a contract.
`tests/contract/connectors/conftest.py` runs each test taking `contract_check` once per check.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from connectors.base import Connector
from connectors.testing import ConnectorContract, ContractHarness
from crm_sync.config import SourceConfig
from crm_sync.http_server import BackgroundServer
from crm_sync.wiring import connector_for

CHECKS = ConnectorContract.check_names()


def registry_connector(
    connector: str,
    *,
    settings: Mapping[str, Any],
    fields: Mapping[str, str],
    opt_out_field: str | None,
) -> Connector:
    """A connector found by name, built from a source config as the wiring builds every one."""
    source = SourceConfig(
        name=f"contract-{connector}",
        connector=connector,
        settings=dict(settings),
        fields=dict(fields),
        opt_out_field=opt_out_field,
    )
    return connector_for(source)


@contextmanager
def served_contract(
    app: Any, harness: Callable[[BackgroundServer], ContractHarness], *, page_size: int
) -> Iterator[ConnectorContract]:
    """A contract whose harness talks to `app`, served on a loopback socket until it ends."""
    with BackgroundServer(app) as server:
        yield ConnectorContract(harness(server), page_size=page_size)
