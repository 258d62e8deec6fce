"""`crm-sync check`."""

from __future__ import annotations

import argparse

from crm_sync.commands.common import add_config_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)


def run(args: argparse.Namespace) -> int:
    raise NotImplementedError("crm-sync check is not built yet")
