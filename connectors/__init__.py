"""CRM connectors: the interface the engine talks to, its registry, and the built-in CRMs.

`base` is the interface (`Connector`, `SourceSpec`, `Contact`, outcomes); `registry` finds a
connector class by name (the built-ins, then the `crm_sync.connectors` entry-point group);
`testing` is the contract suite any connector can run; `hubspot/` and `salesforce/` are the
built-in connectors; `call_log` logs each CRM call at DEBUG. From the engine, connectors use only
`crm_sync.errors`, `crm_sync.logs`, `crm_sync.retry` and `crm_sync.clock`.
"""
