"""Finds a connector class by name: the built-ins, then the `crm_sync.connectors` entry points."""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from pydantic import ValidationError as PydanticValidationError

from connectors.base import Connector, SourceSpec
from crm_sync.clock import SYSTEM_CLOCK, Clock
from crm_sync.errors import ConfigError

ENTRY_POINT_GROUP = "crm_sync.connectors"
BUILTINS: dict[str, str] = {
    "hubspot": "connectors.hubspot:HubSpotConnector",
    "salesforce": "connectors.salesforce:SalesforceConnector",
}


def _load(target: str) -> type[Connector]:
    module_name, _, attr = target.partition(":")
    cls = getattr(importlib.import_module(module_name), attr)
    if not (isinstance(cls, type) and issubclass(cls, Connector)):
        raise ConfigError(f"{target} is not a subclass of connectors.base.Connector")
    return cls


def known_names() -> list[str]:
    """Every connector name that config may use."""
    names = set(BUILTINS)
    names.update(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))
    return sorted(names)


def get_connector_class(name: str) -> type[Connector]:
    """The class registered under `name`; ConfigError listing the known names otherwise."""
    if name in BUILTINS:
        return _load(BUILTINS[name])
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            cls = ep.load()
            if not (isinstance(cls, type) and issubclass(cls, Connector)):
                raise ConfigError(f"entry point {name!r} does not name a Connector subclass")
            return cls
    raise ConfigError(f"unknown connector {name!r}; known: {', '.join(known_names())}")


def validate_spec(connector: str, source: SourceSpec) -> list[str]:
    """Problems with a source's connector name, settings and filters, as `key: message` lines."""
    try:
        cls = get_connector_class(connector)
    except ConfigError as exc:
        return [f"connector: {exc}"]
    problems: list[str] = []
    try:
        cls.settings_model.model_validate(dict(source.settings))
    except PydanticValidationError as exc:
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            if err["type"] == "missing":
                msg = "required key is missing"
            msg = msg.removeprefix("Value error, ")
            problems.append(f"settings.{loc}: {msg}" if loc else f"settings: {msg}")
    problems.extend(cls.validate_filters(source.filters))
    return problems


def build_connector(
    connector: str, source: SourceSpec, *, clock: Clock = SYSTEM_CLOCK
) -> Connector:
    """A ready connector of the class named `connector`, for a source that passed validate_spec."""
    return get_connector_class(connector).from_spec(source, clock=clock)
