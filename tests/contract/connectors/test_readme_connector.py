"""The README's example connector for plugin authors runs and keeps the whole contract."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from connectors.base import Connector, SourceSpec
from connectors.testing import ConnectorContract

README = Path(__file__).resolve().parents[3] / "README.md"
FIELDS = {"email": "work_email", "phone": "mobile"}
OPT_OUT = "no_enrichment"


def readme_example() -> ModuleType:
    """The Python block after the `connector-example` marker, run as a fresh module."""
    block = re.search(r"<!-- connector-example -->\s*```python\n(.*?)```", README.read_text(), re.S)
    assert block, "README.md has no connector example"
    module = ModuleType("readme_connector")
    exec(compile(block.group(1), "README.md", "exec"), module.__dict__)  # noqa: S102 - our README
    return module


class NotebookHarness:
    """Seeds and edits the example's in-memory CRM behind the connector's back."""

    def __init__(self, example: ModuleType) -> None:
        self.example = example
        self.records: dict[str, dict[str, Any]] = example.RECORDS

    def make_connector(self, *, opt_out: bool = True) -> Connector:
        spec = SourceSpec(
            name="notebook",
            fields=FIELDS,
            opt_out_field=OPT_OUT if opt_out else None,
            settings={"owner": "contract"},
        )
        connector: Connector = self.example.NotebookConnector.from_spec(spec)
        return connector

    def add_record(
        self,
        values: Mapping[str, str | None],
        *,
        first_name: str,
        last_name: str,
        opted_out: bool = False,
    ) -> str:
        record_id = f"n{len(self.records) + 1:05d}"
        record = {FIELDS[name]: value for name, value in values.items()}
        self.records[record_id] = {"first": first_name, "last": last_name, **record}
        self.records[record_id][OPT_OUT] = opted_out
        return record_id

    def set_value(self, record_id: str, logical_field: str, value: str | None) -> None:
        self.records[record_id][FIELDS[logical_field]] = value

    def get_value(self, record_id: str, logical_field: str) -> str | None:
        return self.records[record_id].get(FIELDS[logical_field]) or None

    def unknown_id(self) -> str:
        return "n99999"


def test_readme_connector_keeps_the_contract(contract_check: str) -> None:
    """The example connector of the README passes each contract check."""
    ConnectorContract(NotebookHarness(readme_example()), page_size=2).run(contract_check)
