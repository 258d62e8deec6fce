"""The Salesforce connector: Contacts or Leads of one org, through simple-salesforce.

`connector.py` asks SOQL for gaps and writes through sObject collections; `settings.py` holds the
`settings:` model and the checks on user-given names and filters; `auth.py` the four login flows;
`http.py` the HTTP session, the retries (the engine's one `RetryPolicy`) and the translation of
library errors into `crm_sync.errors`; `incremental.py` the fresh lane's `SystemModstamp` scan.
The names other code uses are re-exported here (`connectors.salesforce:SalesforceConnector` is
the built-in registration).
"""

from connectors.salesforce.connector import COMPANY_FIELDS, RECORD_ID, SalesforceConnector
from connectors.salesforce.http import (
    QUOTA_MESSAGE,
    PlainHttpAdapter,
    SalesforceApi,
    build_session,
    rewrite_url,
    translate,
)
from connectors.salesforce.settings import FIELD_NAME, FIELD_PATH, SalesforceSettings

__all__ = [
    "COMPANY_FIELDS",
    "FIELD_NAME",
    "FIELD_PATH",
    "QUOTA_MESSAGE",
    "RECORD_ID",
    "PlainHttpAdapter",
    "SalesforceApi",
    "SalesforceConnector",
    "SalesforceSettings",
    "build_session",
    "rewrite_url",
    "translate",
]
