"""Each test that takes `contract_check` runs once per check of the connector contract."""

from __future__ import annotations

import pytest

from tests.support.contract import CHECKS


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize `contract_check` over every check name, in the contract's stable order."""
    if "contract_check" in metafunc.fixturenames:
        metafunc.parametrize("contract_check", CHECKS)
