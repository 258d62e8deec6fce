# crm-sync container image.
#
#   docker build -t crm-sync .
#   docker run --rm -v "$PWD/config.yaml:/etc/crm-sync/config.yaml:ro" \
#       -e FULLENRICH_API_KEY -e HUBSPOT_TOKEN -p 8080:8080 crm-sync            # the daemon
#   docker run --rm ... crm-sync --once --config /etc/crm-sync/config.yaml     # one cycle
#
# No secret is baked in: the config file is mounted at run time and every key, token and
# password in it is a ${VAR} read from the environment (see config.example.yaml).
# The base image is pinned to a patch release; bump it deliberately.

# --- builder: install the project and its dependencies into a self-contained venv ---------
FROM python:3.11.13-slim-bookworm AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
# Only what the package needs to build (.dockerignore keeps everything else out).
COPY pyproject.toml README.md ./
COPY crm_sync ./crm_sync
COPY connectors ./connectors

# The same package the README installs, with the PostgreSQL extra (replicas share a PostgreSQL store).
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir '.[postgres]' \
    && /opt/venv/bin/crm-sync --version

# --- runtime: slim Python, the venv, a non-root user ----------------------------------------
FROM python:3.11.13-slim-bookworm

LABEL org.opencontainers.image.title="crm-sync" \
      org.opencontainers.image.description="Finds CRM contacts without email or phone, enriches them, writes them back." \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH="/opt/venv/bin:${PATH}" \
    CRM_SYNC_CONFIG=/etc/crm-sync/config.yaml

# uid/gid 10001: outside the range of system users, matches runAsUser in the Kubernetes files.
# /var/lib/crm-sync is the working directory, so the default SQLite state file lands there.
RUN groupadd --system --gid 10001 crm-sync \
    && useradd --system --no-log-init --uid 10001 --gid 10001 \
       --home-dir /var/lib/crm-sync --shell /usr/sbin/nologin crm-sync \
    && mkdir -p /etc/crm-sync /var/lib/crm-sync \
    && chown 10001:10001 /var/lib/crm-sync

COPY --from=builder /opt/venv /opt/venv

WORKDIR /var/lib/crm-sync
USER 10001:10001

# The daemon's HTTP server: POST /webhooks/enrichment, GET /healthz, /readyz, /metrics.
EXPOSE 8080

# slim has no curl: ask Python. Only meaningful for `run` (the daemon); `--once` serves no HTTP.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]

ENTRYPOINT ["crm-sync"]
CMD ["run", "--config", "/etc/crm-sync/config.yaml"]
