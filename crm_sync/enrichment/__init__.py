"""The enrichment API client (FullEnrich / DeepEnrich) and the API's facts.

`client.py` holds the four operations (verify the key, read credits, submit a paid bulk
enrichment, read its result) and `sending.py` how each call is sent: a slot of the process-wide
rate limiter (`ratelimit.py`), the retry classification run by the one retry policy, and the
rule that a paid POST is never resent once it may have left. The wire dialects (`wire.py`,
`wire_v1.py`, `wire_v2.py`) map the API's shapes to the internal model (`models.py`), and
`responses.py` maps each answer to a result or an error. The API's facts live here once each:
the email statuses (`email_statuses.py`), the credit prices (`prices.py`), what a provider
accepts as a bulk item (`input_rules.py`) and the webhook signature (`signature.py`). The field
names it shares with the CRM side are in `crm_sync/fields.py`.
"""
