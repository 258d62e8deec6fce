"""The HubSpot connector: contacts through hubspot-api-client, searched, read and batch-updated.

`connector.py` finds gaps (keyset-paged search) and reads; `writing.py` batch-writes and maps
HubSpot's partial errors to records; `policy.py` classifies HubSpot's errors for the engine's one
`RetryPolicy` and paces calls (`Throttle`); `auth.py` holds the private-app and OAuth tokens;
`filters.py`, `fields.py`, `incremental.py` and `settings.py` the user's filters, the property
checks, the fresh lane's scan and the `settings:` model. `connectors.hubspot:HubSpotConnector`
is the built-in registration.
"""

from connectors.hubspot.connector import HubSpotConnector
from connectors.hubspot.policy import Throttle
from connectors.hubspot.settings import HubSpotSettings

__all__ = ["HubSpotConnector", "HubSpotSettings", "Throttle"]
