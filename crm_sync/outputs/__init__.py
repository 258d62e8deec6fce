"""What a run tells the world: Prometheus metrics, the Pushgateway push of a `--once` run,
notifications through apprise (and when to repeat them), health read from the run history, and
the terminal progress display. Nothing here decides anything about contacts.
"""
