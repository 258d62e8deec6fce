"""Process exit codes, shared by the CLI, the pipeline and the Kubernetes manifests."""

EXIT_OK = 0
EXIT_PARTIAL = 1  # a source failed, or a batch is in_doubt: look at the report
EXIT_CONFIG = 2  # the config file or environment is wrong: retrying cannot help
EXIT_AUTH = 3  # a key or token was refused: renew it
EXIT_CREDITS = 4  # not enough enrichment credits: top up
