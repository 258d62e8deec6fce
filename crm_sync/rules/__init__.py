"""Pure rules that decide what may be written into a CRM: the per-field write policy (accepted
email statuses, E.164 phones, never overwrite what a person typed), value plausibility, and the
identity check of a result against the record. No I/O: the pipeline calls them per contact.
"""
