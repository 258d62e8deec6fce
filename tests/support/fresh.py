"""Creating contacts through the HubSpot API, as a sales rep's tool would, for fresh-lane tests."""

from __future__ import annotations

from hubspot import HubSpot
from hubspot.crm.contacts import SimplePublicObjectInputForCreate

from crm_sync.sandbox.people import truth_for
from crm_sync.sandbox.world import SandboxWorld

ACCEPTED = frozenset({"DELIVERABLE", "HIGH_PROBABILITY"})


def hubspot_client(world: SandboxWorld) -> HubSpot:
    return HubSpot(access_token=world.hubspot.token, host=world.servers["hubspot"].url)


def create_contact(client: HubSpot, first: str, last: str, **extra: str) -> str:
    """POST /crm/v3/objects/contacts: a contact with a company and no email or phone."""
    properties = {"firstname": first, "lastname": last, "company": "Acme Analytics"}
    properties["website"] = "acme-analytics.com"
    properties.update(extra)
    body = SimplePublicObjectInputForCreate(properties=properties, associations=[])
    created = client.crm.contacts.basic_api.create(simple_public_object_input_for_create=body)
    return str(created.id)


def email_only_name(start: int = 0) -> tuple[str, str]:
    """A name the enrichment emulator finds an accepted email for and no phone."""
    for i in range(start, start + 10_000):
        first, last = f"Fresh{i}", "Emailonly"
        truth = truth_for(first, last, "acme-analytics.com")
        if truth.email_status in ACCEPTED and truth.phone is None:
            return first, last
    raise AssertionError("no such name in 10,000 tries")
