"""The cycle and its stages, run the same way by `--once`, the daemon, `replay` and `resolve`.

`context` holds what every stage is given (config, store, client, connectors, the one clock);
`cycle` runs a whole pass: per source, `submit` selects, plans and `send`s within a `budget`
(`shared_budget` with the fresh lane) under a source `lease`; then `collect` stores results
(`contact_events` for per-contact ones) and `writeback` writes them (`field_guard` first).
`fresh` is the daemon's incremental lane, `replay` the re-write of stored results; `report` and
`run_record` say what a run did.
"""
