"""The Salesforce org emulator: `SalesforceEmulator`.

The SOQL subset the connector sends (`soql`, evaluated in `data`), `nextRecordsUrl` paging,
sObject collection updates with per-record results, `Sforce-Limit-Info`, 401 and 403, and the
ways in: SOAP login, the OAuth JWT-bearer and client-credentials flows, and their key pairs.
"""

from crm_sync.sandbox.salesforce.emulator import SalesforceEmulator

__all__ = ["SalesforceEmulator"]
