"""One module per `crm-sync` subcommand, each with `add_arguments(parser)` and `run(args) -> int`.

The CLI imports a command only when it is chosen, so `--help` stays fast. `once` and `run` drive
the pipeline; `check` (with `check_outputs`), `status`, `resolve` and `replay` are for operators;
`demo` (with `demo_live`) and `sandbox` start the in-process emulators; `common` holds the
arguments and helpers they share.
"""
