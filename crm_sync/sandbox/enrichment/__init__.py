"""The enrichment API emulator (FullEnrich / DeepEnrich, v1 and v2): `EnrichmentEmulator`.

Bulk submit, polling, credits and signed webhook delivery over asyncio jobs, with switches for
faults and for the API's odd answers (`styles`); `facts` states the API's limits, prices,
statuses and signature as the reference documents them, independently of the client.
"""

from crm_sync.sandbox.enrichment.emulator import EnrichmentEmulator

__all__ = ["EnrichmentEmulator"]
