"""Process exit codes, shared by the CLI, the pipeline and the Kubernetes manifests.

The one table every other place reads (the CLI, the CronJob's podFailurePolicy, the README, the
tests). Each code tells an operator whether to fix something or to retry.
"""

EXIT_OK = 0
EXIT_FAILED = 1  # a source failed for a reason a retry will not fix (query refused, daily quota)
EXIT_PARTIAL = EXIT_FAILED  # former name, kept while callers move to EXIT_FAILED
EXIT_CONFIG = 2  # the config file, a mapped CRM field or the environment is wrong: fix it
EXIT_AUTH = 3  # a key, token or secret was refused: renew it
EXIT_CREDITS = 4  # not enough enrichment credits: top up
EXIT_TRANSIENT = 5  # infrastructure unreachable (store, network, API 5xx/429): retry later
EXIT_IN_DOUBT = 6  # a person must act: a batch may be paid for and its answer is unknown
EXIT_INTERRUPTED = 7  # stopped by SIGTERM/SIGINT before the run finished: run again

# Codes that a plain retry may fix; a CronJob counts only these against its backoffLimit.
RETRYABLE_EXIT_CODES = frozenset({EXIT_TRANSIENT, EXIT_INTERRUPTED})
