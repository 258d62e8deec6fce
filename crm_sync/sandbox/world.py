"""The three emulators started together, with a config that points crm-sync at them.

Used by `crm-sync demo`, `crm-sync sandbox all` and the end-to-end tests, so all three speak
to the same world: the CRM emulators seed people from `people.generate_people`, and the
enrichment emulator answers from `people.truth_for_request`.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from crm_sync.http_server import BackgroundServer
from crm_sync.sandbox.enrichment import EnrichmentEmulator
from crm_sync.sandbox.hubspot import HubSpotEmulator
from crm_sync.sandbox.salesforce import SalesforceEmulator


@dataclass
class WorldOptions:
    """Sizes and speeds of a sandbox world; defaults suit a demo."""

    hubspot_contacts: int = 300
    salesforce_contacts: int = 300
    seed: int = 7
    completion_delay: float = 0.3
    rate_limit_calls: int = 600
    rate_limit_window: float = 60.0
    balance: int = 1_000_000
    webhook_retry_interval: float = 60.0
    api_version: str = "v1"  # the dialect the config speaks; the emulator serves both
    enrichment_kwargs: dict[str, Any] = field(default_factory=dict)
    hubspot_kwargs: dict[str, Any] = field(default_factory=dict)
    salesforce_kwargs: dict[str, Any] = field(default_factory=dict)


class SandboxWorld:
    """Start with `with SandboxWorld() as world:`; `world.config_dict()` is a ready config."""

    def __init__(
        self, options: WorldOptions | None = None, *, ports: tuple[int, int, int] = (0, 0, 0)
    ):
        self.options = opts = options or WorldOptions()
        self.enrichment = EnrichmentEmulator(
            balance=opts.balance,
            rate_limit_calls=opts.rate_limit_calls,
            rate_limit_window=opts.rate_limit_window,
            completion_delay=opts.completion_delay,
            webhook_retry_interval=opts.webhook_retry_interval,
            seed=opts.seed,
            **opts.enrichment_kwargs,
        )
        # A portal with a higher API tier than the default, matching the pace the sandbox
        # source asks for (50 requests/s): tests and the demo are not about waiting out 429s.
        hubspot_limits = {"search_per_second": 50, "ten_secondly_limit": 1000}
        self.hubspot = HubSpotEmulator(
            contacts=opts.hubspot_contacts,
            seed=opts.seed,
            **{**hubspot_limits, **opts.hubspot_kwargs},
        )
        self.salesforce = SalesforceEmulator(
            contacts=opts.salesforce_contacts, seed=opts.seed + 100, **opts.salesforce_kwargs
        )
        self._ports = ports
        self._stack = ExitStack()
        self.servers: dict[str, BackgroundServer] = {}

    def start(self) -> SandboxWorld:
        apps = {"enrichment": self.enrichment.app, "hubspot": self.hubspot.app}
        apps["salesforce"] = self.salesforce.app
        for (name, app), port in zip(apps.items(), self._ports, strict=True):
            self.servers[name] = self._stack.enter_context(BackgroundServer(app, port=port))
        return self

    def stop(self) -> None:
        self._stack.close()

    def __enter__(self) -> SandboxWorld:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def enrichment_url(self) -> str:
        return f"{self.servers['enrichment'].url}/api/{self.options.api_version}"

    def enrichment_section(self) -> dict[str, Any]:
        return {
            "provider": "fullenrich",
            "api_version": self.options.api_version,
            "base_url": self.enrichment_url,
            "api_key": self.enrichment.api_key,
            "rate_limit_per_minute": self.options.rate_limit_calls,
        }

    def hubspot_auth(self, auth: str = "private_app") -> dict[str, Any]:
        """The settings keys of one HubSpot auth flow on this world."""
        return self.hubspot.auth_settings(auth)

    def salesforce_auth(self, auth: str = "session") -> dict[str, Any]:
        """The settings keys of one Salesforce auth flow on this world."""
        return self.salesforce.auth_settings(self.servers["salesforce"].url, auth)

    def hubspot_source(
        self, name: str = "hubspot", auth: str = "private_app", **extra: Any
    ) -> dict[str, Any]:
        source: dict[str, Any] = {
            "name": name,
            "connector": "hubspot",
            "settings": {
                **self.hubspot_auth(auth),
                "base_url": self.servers["hubspot"].url,
                "requests_per_second": 50,
            },
            "fields": {"email": "email", "phone": "phone"},
            "opt_out_field": "crm_sync_opt_out",
        }
        source.update(extra)
        return source

    def salesforce_source(
        self, name: str = "salesforce", auth: str = "session", **extra: Any
    ) -> dict[str, Any]:
        source: dict[str, Any] = {
            "name": name,
            "connector": "salesforce",
            "settings": {"object": "Contact", **self.salesforce_auth(auth)},
            "fields": {"email": "Email", "phone": "MobilePhone"},
            "opt_out_field": "Enrichment_Opt_Out__c",
        }
        source.update(extra)
        return source

    def config_dict(self, state_url: str, **sections: Any) -> dict[str, Any]:
        """A whole config on this world: both sources, fast polling, the given store."""
        config: dict[str, Any] = {
            "enrichment": self.enrichment_section(),
            "state": {"url": state_url},
            "run": {"poll_initial_seconds": 0.2, "poll_max_seconds": 1.0},
            "sources": [self.hubspot_source(), self.salesforce_source()],
        }
        config.update(sections)
        return config
