# Relaygate in a container: the README's install (a virtual environment in /app/.venv), run as a
# non-root user, `relaygate` as the entry point. Build and run:
#   docker build -t relaygate .
#   docker run --rm -p 8080:8080 relaygate                      # the quickstart's mock model, SQLite in /data
#   docker exec <container> relaygate tokens create --user you@example.com
# Any other command: `docker run --rm relaygate check -f /etc/relaygate` (mount your config there).
# compose.yaml runs two replicas with PostgreSQL and Redis.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

# An unprivileged user owns the code, the virtual environment and the SQLite data directory.
RUN groupadd --system --gid 10001 relaygate \
 && useradd --system --uid 10001 --gid relaygate --home-dir /app --shell /usr/sbin/nologin relaygate \
 && mkdir -p /app /data /etc/relaygate \
 && chown relaygate:relaygate /app /data /etc/relaygate

WORKDIR /app
COPY --chown=relaygate:relaygate pyproject.toml README.md LICENSE ./
COPY --chown=relaygate:relaygate relaygate ./relaygate
COPY --chown=relaygate:relaygate examples ./examples
USER relaygate

# The install half of the README's first command.
RUN python3 -m venv .venv && .venv/bin/pip install -e .

ENV PATH=/app/.venv/bin:$PATH \
    RELAYGATE_DATABASE_URL=sqlite:////data/relaygate.db \
    RELAYGATE_CONFIG=/app/examples/quickstart.yaml
VOLUME ["/data"]
EXPOSE 8080

# /health answers while the process lives (/ready also waits for the config, pool and log writer).
# The slim image has no curl: Python's urllib asks instead.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python3", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=4).status == 200 else 1)"]

ENTRYPOINT ["relaygate"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
