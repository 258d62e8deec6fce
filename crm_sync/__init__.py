"""crm-sync: keeps a CRM's contacts reachable through a contact-enrichment API."""

__version__ = "0.1.0"
