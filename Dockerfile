# Every mcp-sse service image, from one file: the service is the build argument SERVICE.
#   docker build --build-arg SERVICE=fetch -t mcp-sse/fetch:0.1.0 .
# scripts/build_images.sh builds all five (tags from config/services.yaml). A build without SERVICE, or
# with a name config/services.yaml does not hold, stops with a message naming the argument (BuildKit
# already refuses the blank last FROM). The context is the repository root because the images hold
# more than services/: libmcp/, the registry (config/) and the healthcheck probe.
# Where pip cannot reach an index from inside the build, put the wheels in ./wheels
# (scripts/setup.d/50-containers.sh) and build with --build-arg PIP_OFFLINE=1 --network=none.
# No default on purpose: BuildKit's InvalidDefaultArgInFrom warning says SERVICE is required.
ARG SERVICE

# Build stage, on the full python image (compilers for any sdist, binutils for strip): a virtualenv
# with mcp-sse[<the service's extra>] and nothing else. pip, its caches and the compilers stay here.
FROM python:3.12 AS build
# Lets scripts/cleanup.sh --images find this stage's leftover images.
LABEL io.mcp-sse.stage=build
ARG PIP_OFFLINE=
WORKDIR /src
COPY pyproject.toml README.md ./
# 1. The core dependencies, before SERVICE is declared: one cached layer serves all five images.
#    The build context is mounted, not copied: the optional wheels/ never lands in a layer.
RUN --mount=type=bind,target=/context \
    set -eu; \
    if [ -n "$PIP_OFFLINE" ]; then set -- --no-index --find-links /context/wheels; \
    elif [ -d /context/wheels ]; then set -- --find-links /context/wheels; fi; \
    python -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"], sep="\n")' \
        > /tmp/core-requirements.txt; \
    python -m venv /opt/venv; \
    /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check "$@" -r /tmp/core-requirements.txt
# 2. The packages (one COPY per top-level package of pyproject's wheel), then the service's extra as
#    the registry names it: service_extra.py stops a missing or unknown SERVICE here, naming the known
#    ones. Then pip itself goes, and debug symbols are stripped.
COPY config/ config/
COPY libmcp/ libmcp/
COPY services/ services/
COPY fleet/ fleet/
COPY scripts/container/service_extra.py /tmp/service_extra.py
ARG SERVICE
RUN --mount=type=bind,target=/context \
    set -eu; \
    if [ -n "$PIP_OFFLINE" ]; then set -- --no-index --find-links /context/wheels; \
    elif [ -d /context/wheels ]; then set -- --find-links /context/wheels; fi; \
    extra="$(/opt/venv/bin/python /tmp/service_extra.py config/services.yaml "${SERVICE-}")"; \
    /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check "$@" "/src[$extra]"; \
    /opt/venv/bin/pip uninstall --yes --disable-pip-version-check pip setuptools; \
    find /opt/venv -name "*.so" -exec strip --strip-debug {} +
# 3. monitoring only, to stay under 200 MB: kubernetes also ships an asyncio twin of its whole generated
#    client (kubernetes/aio, ~70 MB with bytecode) and the service uses the synchronous client only
#    (services/monitoring/kube_logs.py). Its generated client (~57 MB) is kept as bytecode only.
RUN set -eu; \
    if [ "$SERVICE" = monitoring ]; then \
        rm -rf /opt/venv/lib/python3*/site-packages/kubernetes/aio; \
        client=$(echo /opt/venv/lib/python3*/site-packages/kubernetes/client); \
        python -m compileall -q -b "$client"; \
        find "$client" -name "*.py" -delete; \
        find "$client" -name __pycache__ -prune -exec rm -rf {} +; \
    fi

# The runtime every service shares: python:3.12-slim, a non-root user with a fixed UID/GID, the
# environment, the healthcheck probe and the stop signal. It holds no SERVICE, so it is built once.
FROM python:3.12-slim AS runtime
# io.mcp-sse.stage lets scripts/cleanup.sh --images find leftover images of ours.
LABEL org.opencontainers.image.licenses="MIT" \
      io.mcp-sse.stage=runtime
# A fixed UID/GID so bind-mounted host directories (/shared) can be chowned to it; no home, no shell.
RUN groupadd --gid 10001 mcp \
    && useradd --no-log-init --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin mcp
COPY scripts/container/healthcheck.py /opt/mcp-sse/healthcheck.py
# MCP_HOST=0.0.0.0: inside a container the service must listen beyond loopback (ports are published
# on the host's 127.0.0.1 by compose). HOME=/tmp: the only writable place under a read-only root.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    MCP_HOST=0.0.0.0
WORKDIR /app
USER 10001:10001
# uvicorn drains on SIGTERM: SSE streams end at once, tool calls get MCP_SHUTDOWN_GRACE_S to finish.
STOPSIGNAL SIGTERM

# One stage per service: what Docker cannot derive from a build argument (EXPOSE takes no lookup, and
# exec-form HEALTHCHECK and CMD expand no variables). Ports are the registry's; tests/deploy checks them.
# CMD is exec form: the service is PID 1 and gets SIGTERM itself.
FROM runtime AS postgres
EXPOSE 8001 9001
# --allow-degraded: /health answers 503 while the database is down; the process is alive and a
# restart would not bring the database back, so 503 counts as healthy here (liveness).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "/opt/mcp-sse/healthcheck.py", "8001", "--allow-degraded"]
CMD ["mcp-sse", "serve", "postgres"]

FROM runtime AS fetch
EXPOSE 8002 9002
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "/opt/mcp-sse/healthcheck.py", "8002"]
CMD ["mcp-sse", "serve", "fetch"]

FROM runtime AS filesystem
EXPOSE 8003 9003
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "/opt/mcp-sse/healthcheck.py", "8003"]
CMD ["mcp-sse", "serve", "filesystem"]

FROM runtime AS github
EXPOSE 8004 9004
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "/opt/mcp-sse/healthcheck.py", "8004"]
CMD ["mcp-sse", "serve", "github"]

FROM runtime AS monitoring
EXPOSE 8005 9005
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "/opt/mcp-sse/healthcheck.py", "8005"]
CMD ["mcp-sse", "serve", "monitoring"]

# The image: the service's stage plus its virtualenv. Copying it here, not in the service stages,
# makes every build go through the build stage's check of SERVICE.
# checkov:skip=CKV_DOCKER_7: ${SERVICE} names one of the stages above, not an image that could carry a tag
FROM ${SERVICE}
ARG SERVICE
LABEL org.opencontainers.image.title="mcp-sse ${SERVICE}"
COPY --from=build /opt/venv /opt/venv
