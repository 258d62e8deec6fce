"""The HubSpot CRM v3 contacts emulator: `HubSpotEmulator`.

Search with filter groups and the 10,000 cap, batch read, create and update with 207 partial
errors and 409 email conflicts, HubSpot's three rate limits, and private-app or OAuth tokens;
answers follow HubSpot's OpenAPI spec.
"""

from crm_sync.sandbox.hubspot.emulator import HubSpotEmulator

__all__ = ["HubSpotEmulator"]
