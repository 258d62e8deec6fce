"""`crm-sync sandbox`."""

from __future__ import annotations

import argparse

from crm_sync.commands.common import add_config_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)


def run(args: argparse.Namespace) -> int:
    raise NotImplementedError("crm-sync sandbox is not built yet")
