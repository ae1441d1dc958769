# A real PostgreSQL 15 (Debian's packages) for the container tier (tests/deploy/test_containers.py):
# it sits on postgres-net only; mcp-postgres queries it and mcp-fetch must not reach it. Test-only.
FROM python:3.12-slim
# Lets scripts/build_images.sh and cleanup.sh --images prune replaced copies of this image.
LABEL io.mcp-sse.stage=test

# Unpinned on purpose: the test wants whatever PostgreSQL 15 Debian ships today.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-15 \
    && rm -rf /var/lib/apt/lists/*

ENV PATH=/usr/lib/postgresql/15/bin:$PATH \
    PGDATA=/var/lib/postgresql/data
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# The Debian package creates "postgres" with a system UID picked at install time, so it goes by name.
# hadolint ignore=DL3066
USER postgres
# A cluster with password (SCRAM) logins over TCP, a role "mcp" and a database "demo" with one table.
# The password is a fixed test value: this image never leaves the test machine.
RUN set -eu; \
    echo "mcp-test-only" > /tmp/pw; \
    initdb --auth-local=trust --auth-host=scram-sha-256 --username=postgres --pwfile=/tmp/pw >/dev/null; \
    rm /tmp/pw; \
    echo "host all all 0.0.0.0/0 scram-sha-256" >> "$PGDATA/pg_hba.conf"; \
    printf '%s\n' "CREATE ROLE mcp LOGIN PASSWORD 'mcp-test-only';" "CREATE DATABASE demo OWNER mcp;" \
        | postgres --single -D "$PGDATA" postgres >/dev/null; \
    printf '%s\n' "CREATE TABLE public.fruit (id integer PRIMARY KEY, name text NOT NULL);" \
        "INSERT INTO public.fruit VALUES (1, 'apple'), (2, 'pear'), (3, 'quince');" \
        "ALTER TABLE public.fruit OWNER TO mcp;" \
        | postgres --single -D "$PGDATA" demo >/dev/null

EXPOSE 5432
HEALTHCHECK --interval=5s --timeout=3s CMD ["pg_isready", "-h", "127.0.0.1", "-q"]
CMD ["postgres", "-c", "listen_addresses=*", "-c", "unix_socket_directories=/tmp"]
