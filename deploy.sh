#!/usr/bin/env bash
# Deploy mcp-sse on one host beside LiteLLM (docker-compose.yml), locally, or on Kubernetes (Helm).
# docs/DEPLOY.md walks through it.
#
#   ./deploy.sh up [--create-networks] [--build] [--offline]
#                               build missing images, check the external networks, start, wait for health
#   ./deploy.sh down            stop and remove the containers (networks and images stay)
#   ./deploy.sh restart [SERVICE]   restart one service or all, then wait for health
#   ./deploy.sh status          containers and what /health says
#   ./deploy.sh logs [SERVICE] [ARGS...]   container logs (e.g. ./deploy.sh logs fetch -f)
#   ./deploy.sh test [SERVICE]  call one tool of each service through /mcp (scripts/test_service.sh)
#   ./deploy.sh build [--offline] [SERVICE...]   (re)build the images (scripts/build_images.sh)
#   ./deploy.sh networks [--create]   check (or create) litellm-net and postgres-net
#   ./deploy.sh clean [--images] [--networks]   remove containers, and optionally images and networks
#   ./deploy.sh local [SERVICE...]   run on this host without containers (make run / mcp-sse up)
#   ./deploy.sh k8s [--dry-run] [HELM ARGS...]   helm upgrade --install charts/mcp-sse, env file as a
#                               Secret (--dry-run: only print the manifests, helm template)
#
# SERVICE is a registry name (fetch) or a container name (mcp-fetch).
# Environment: DEPLOY_ENV_FILE (default secrets/sse.env), DEPLOY_WAIT_S (health wait, default 180),
# DEPLOY_COMPOSE (compose command), DEPLOY_ENGINE (docker|podman), and the compose knobs listed at the
# top of docker-compose.yml. K8S_NAMESPACE (mcp), K8S_RELEASE (mcp-sse) for `k8s`.
set -euo pipefail
cd "$(dirname "$0")"

say() { printf 'deploy: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

SERVICES=(postgres fetch filesystem github monitoring)
NETWORKS=(litellm-net postgres-net)
export COMPOSE_PROJECT_NAME="${COMPOSE_PROJECT_NAME:-mcp-sse}"

service_name() {
  local name="${1#mcp-}" known
  for known in "${SERVICES[@]}"; do
    [ "$known" = "$name" ] && { printf '%s\n' "$name"; return 0; }
  done
  die "unknown service '$1'; known: ${SERVICES[*]}"
}

# The env file: the services' settings and secrets, which compose hands to every container (env_file).
# Here it is only checked, never executed nor exported (its DOCKER_HOST is mcp-monitoring's, not ours),
# so a malformed line stops the deployment before anything starts. When it is missing, an empty file
# stands in (the env_file syntax every compose version accepts requires a file): services use defaults.
load_env_file() {
  [ -n "${ENV_LOADED:-}" ] && return 0
  ENV_LOADED=1
  export DEPLOY_ENV_FILE="${DEPLOY_ENV_FILE:-secrets/sse.env}"
  if [ ! -f "$DEPLOY_ENV_FILE" ]; then
    say "no $DEPLOY_ENV_FILE (copy secrets/sse.env.example to create it); every service runs on its defaults"
    EMPTY_ENV_FILE="$(mktemp "${TMPDIR:-/tmp}/mcp-sse-env.XXXXXX")"
    trap 'rm -f "$EMPTY_ENV_FILE"' EXIT
    export DEPLOY_ENV_FILE="$EMPTY_ENV_FILE"
    return 0
  fi
  local line key number=0
  while IFS= read -r line || [ -n "$line" ]; do
    number=$((number + 1))
    line="${line#"${line%%[![:space:]]*}"}"
    case "$line" in ''|'#'*) continue ;; esac
    line="${line#export }"
    key="${line%%=*}"
    if [ "$key" = "$line" ] || ! [[ "$key" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then
      die "$DEPLOY_ENV_FILE:$number is not a KEY=value line"
    fi
  done <"$DEPLOY_ENV_FILE"
}

# Deployment knobs (DEPLOY_*, see docker-compose.yml) may also sit in ./.env, which compose reads for
# interpolation; take them from there too (without executing it) unless the environment sets them.
load_deploy_knobs() {
  [ -f .env ] || return 0
  local line key value
  while IFS= read -r line || [ -n "$line" ]; do
    [[ "$line" =~ ^(export[[:space:]]+)?(DEPLOY_[A-Z0-9_]+)=(.*)$ ]] || continue
    key="${BASH_REMATCH[2]}"
    value="${BASH_REMATCH[3]}"
    if [[ "$value" =~ ^\"(.*)\"$ ]] || [[ "$value" =~ ^\'(.*)\'$ ]]; then value="${BASH_REMATCH[1]}"; fi
    [ -n "${!key+set}" ] || export "$key=$value"
  done <.env
}
load_deploy_knobs

# The container engine and the compose command ---------------------------------------------------
detect_engine() {
  [ -n "${ENGINE:-}" ] && return 0
  if [ -n "${DEPLOY_ENGINE:-}" ]; then
    ENGINE="$DEPLOY_ENGINE"
  elif command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    ENGINE=docker
    # The docker CLI may be talking to podman's Docker-compatible socket.
    if docker version 2>/dev/null | grep -qi podman && command -v podman >/dev/null; then ENGINE=podman; fi
  elif command -v podman >/dev/null; then
    ENGINE=podman
  else
    die "no container engine answers: start Docker, or install podman"
  fi
  if [ "$ENGINE" = podman ] && [ -z "${CONTAINERS_CONF:-}" ] && [ -f .tools/podman/containers.conf ]; then
    export CONTAINERS_CONF="$PWD/.tools/podman/containers.conf"
  fi
  export CONTAINER_ENGINE="$ENGINE"
}

detect_compose() {
  [ -n "${COMPOSE:-}" ] && return 0
  detect_engine
  if [ -n "${DEPLOY_COMPOSE:-}" ]; then
    read -r -a COMPOSE <<<"$DEPLOY_COMPOSE"
  elif command -v docker >/dev/null && docker compose version >/dev/null 2>&1; then
    COMPOSE=(docker compose)
  elif command -v docker-compose >/dev/null; then
    COMPOSE=(docker-compose)
  elif command -v podman-compose >/dev/null; then
    COMPOSE=(podman-compose)
  else
    die "no compose command: install the Docker Compose plugin, docker-compose or podman-compose"
  fi
  if [ "$ENGINE" = podman ] && [ "${COMPOSE[0]}" != podman-compose ] && [ -z "${DOCKER_HOST:-}" ]; then
    if [ -S /run/podman/podman.sock ]; then
      export DOCKER_HOST=unix:///run/podman/podman.sock
    else
      die "${COMPOSE[*]} needs podman's socket: run 'podman system service --time=0 &' and set DOCKER_HOST, or install podman-compose"
    fi
  fi
}

compose() { detect_compose; "${COMPOSE[@]}" -f docker-compose.yml "$@"; }

# Networks ------------------------------------------------------------------------------------------
network_exists() { "$ENGINE" network inspect "$1" >/dev/null 2>&1; }

ensure_networks() {
  local create="$1" network missing=()
  detect_engine
  for network in "${NETWORKS[@]}"; do
    network_exists "$network" || missing+=("$network")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$create" != 1 ]; then
    die "external network(s) missing: ${missing[*]}. Create them with './deploy.sh networks --create'" \
      "(or 'up --create-networks'), or join the ones LiteLLM already uses (docs/DEPLOY.md)"
  fi
  for network in "${missing[@]}"; do
    if [ "$ENGINE" = podman ]; then
      # Docker isolates user-defined bridges from each other by default; netavark only does so for
      # networks created with isolate=true. Without it, mcp-fetch could reach postgres-net by IP.
      podman network create --opt isolate=true "$network" >/dev/null
    else
      docker network create "$network" >/dev/null
    fi
    say "created network $network"
  done
}

# Images, start-up and health -------------------------------------------------------------------------
ensure_images() {
  local rebuild="$1" offline="$2" version name missing=()
  version="$(sed -n 's/^version = "\(.*\)"$/\1/p' pyproject.toml | head -n1)"
  for name in "${SERVICES[@]}"; do
    if [ "$rebuild" = 1 ] || ! "$ENGINE" image inspect "mcp-sse/$name:$version" >/dev/null 2>&1; then
      missing+=("$name")
    fi
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "building images: ${missing[*]}"
  local args=()
  [ "$offline" = 1 ] && args+=(--offline)
  scripts/build_images.sh "${args[@]}" "${missing[@]}" || die "image build failed (see above)"
}

# Host directories for the filesystem service; /shared must be writable by the containers' UID 10001.
ensure_directories() {
  local workspace="${DEPLOY_WORKSPACE_DIR:-./workspace}" shared="${DEPLOY_SHARED_DIR:-./shared}"
  [ -d "$workspace" ] || { mkdir -p "$workspace"; say "created $workspace (served read-only as /workspace)"; }
  if [ ! -d "$shared" ]; then
    mkdir -p "$shared"
    say "created $shared (served read-write as /shared)"
    if [ "$(id -u)" -eq 0 ]; then chown 10001:10001 "$shared"; fi
  fi
  if [ "$(stat -c %u "$shared")" != 10001 ] && [ "$(id -u)" -eq 0 ]; then
    say "note: $shared is not owned by UID 10001; writes through /shared may be refused (chown 10001 $shared)"
  fi
}

# The Docker socket for mcp-monitoring: the group that owns it is added to the container.
prepare_docker_socket() {
  local socket="${DEPLOY_DOCKER_SOCKET:-}"
  if [ -z "$socket" ]; then
    # The engine that runs the containers: DOCKER_HOST's socket (podman's, say), else Docker's default.
    case "${DOCKER_HOST:-}" in
      unix://*) socket="${DOCKER_HOST#unix://}" ;;
      *) socket=/var/run/docker.sock ;;
    esac
  fi
  export DEPLOY_DOCKER_SOCKET="$socket"
  if [ -S "$socket" ]; then
    export DEPLOY_DOCKER_GID="${DEPLOY_DOCKER_GID:-$(stat -c %g "$socket")}"
  else
    die "no Docker socket at $socket for mcp-monitoring; set DEPLOY_DOCKER_SOCKET (podman: its API socket)"
  fi
}

container_state() {
  "$ENGINE" inspect --format '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' \
    "$1" 2>/dev/null || echo "missing none"
}

# Wait until every named service runs and answers /health on its published port; on a failure say
# which service, what state it is in, and show the end of its log.
wait_healthy() {
  local deadline=$((SECONDS + ${DEPLOY_WAIT_S:-180})) pending=("$@") still name state health
  while [ ${#pending[@]} -gt 0 ]; do
    still=()
    for name in "${pending[@]}"; do
      read -r state health <<<"$(container_state "mcp-$name")"
      case "$state" in
        running) ;;
        exited|dead|missing)
          report_failure "$name" "container is $state"
          return 1 ;;
        restarting)
          report_failure "$name" "container keeps exiting and being restarted"
          return 1 ;;
      esac
      if [ "$health" = unhealthy ]; then
        report_failure "$name" "its healthcheck reports unhealthy"
        return 1
      fi
      if [ "$state" = running ] && scripts/health_check.sh --quiet "$name"; then
        say "mcp-$name is up"
      else
        still+=("$name")
      fi
    done
    pending=("${still[@]+"${still[@]}"}")
    [ ${#pending[@]} -eq 0 ] && break
    if [ $SECONDS -ge $deadline ]; then
      for name in "${pending[@]}"; do
        report_failure "$name" "no healthy answer after ${DEPLOY_WAIT_S:-180} s (state: $(container_state "mcp-$name"))"
      done
      return 1
    fi
    sleep 2
  done
}

report_failure() {
  say "FAILED: mcp-$1: $2. Last log lines:"
  "$ENGINE" logs --tail 20 "mcp-$1" 2>&1 | sed 's/^/    /' >&2 || true
}

# Commands ------------------------------------------------------------------------------------------
cmd_up() {
  local create=0 rebuild=0 offline=0 arg name names=()
  for arg in "$@"; do
    case "$arg" in
      --create-networks) create=1 ;;
      --build) rebuild=1 ;;
      --offline) offline=1 ;;
      *) names+=("$(service_name "$arg")") ;;
    esac
  done
  [ ${#names[@]} -eq 0 ] && names=("${SERVICES[@]}")
  load_env_file
  detect_compose
  ensure_networks "$create"
  ensure_directories
  prepare_docker_socket
  ensure_images "$rebuild" "$offline"
  local containers=()
  for name in "${names[@]}"; do containers+=("mcp-$name"); done
  compose up -d --no-build "${containers[@]}" || die "compose could not start the services (see above)"
  say "waiting for health (up to ${DEPLOY_WAIT_S:-180} s)"
  wait_healthy "${names[@]}" || die "not every service became healthy; './deploy.sh logs SERVICE' shows more"
  scripts/health_check.sh "${names[@]}" || true
}

cmd_down() {
  load_env_file
  compose down --remove-orphans
  # A container caught between a failed start and its restart (restart: unless-stopped) can outlive
  # `compose down`: nothing of ours may stay behind.
  local name
  for name in "${SERVICES[@]}"; do
    if "$ENGINE" container inspect "mcp-$name" >/dev/null 2>&1; then
      say "removing mcp-$name, which compose down left behind"
      "$ENGINE" rm -f "mcp-$name" >/dev/null
    fi
  done
}

cmd_restart() {
  local names=()
  [ $# -gt 0 ] && names=("$(service_name "$1")") || names=("${SERVICES[@]}")
  load_env_file
  local containers=() name
  for name in "${names[@]}"; do containers+=("mcp-$name"); done
  compose restart "${containers[@]}"
  wait_healthy "${names[@]}" || die "restart did not come back healthy"
  scripts/health_check.sh "${names[@]}" || true
}

cmd_status() {
  load_env_file
  detect_compose
  compose ps
  local name state health
  for name in "${SERVICES[@]}"; do
    read -r state health <<<"$(container_state "mcp-$name")"
    printf '%-16s container %-8s healthcheck %s\n' "mcp-$name" "$state" "$health"
  done
  scripts/health_check.sh
}

cmd_logs() {
  local args=()
  if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
    args+=("mcp-$(service_name "$1")")
    shift
  fi
  load_env_file
  compose logs --tail="${LOG_LINES:-200}" "$@" "${args[@]+"${args[@]}"}"
}

cmd_test() {
  local names=()
  [ $# -gt 0 ] && names=("$(service_name "$1")")
  load_env_file
  scripts/test_service.sh "${names[@]+"${names[@]}"}"
}

cmd_local() {
  if [ $# -eq 0 ]; then
    exec make run
  fi
  local names=() arg
  for arg in "$@"; do names+=("$(service_name "$arg")"); done
  bash scripts/bootstrap.sh run
  exec .venv/bin/python -m fleet.cli up "${names[@]}"
}

cmd_k8s() {
  local dry_run=0
  if [ "${1:-}" = --dry-run ]; then dry_run=1; shift; fi
  command -v helm >/dev/null || die "helm is not installed (https://helm.sh/docs/intro/install/)"
  [ -d charts/mcp-sse ] || die "charts/mcp-sse is missing"
  local namespace="${K8S_NAMESPACE:-mcp}" release="${K8S_RELEASE:-mcp-sse}" env_file="${DEPLOY_ENV_FILE:-secrets/sse.env}"
  local args=()
  # Every key of the env file becomes an environment variable of every service (secrets.existingSecret).
  [ -f "$env_file" ] && args+=(--set secrets.existingSecret=mcp-sse-env)
  if [ "$dry_run" = 1 ]; then
    # What would be installed, rendered offline; nothing touches a cluster.
    helm template "$release" charts/mcp-sse --namespace "$namespace" "${args[@]+"${args[@]}"}" "$@"
    return
  fi
  command -v kubectl >/dev/null || die "kubectl is not installed"
  kubectl get namespace "$namespace" >/dev/null 2>&1 || kubectl create namespace "$namespace"
  if [ -f "$env_file" ]; then
    kubectl -n "$namespace" create secret generic mcp-sse-env --from-env-file="$env_file" \
      --dry-run=client -o yaml | kubectl -n "$namespace" apply -f -
  else
    say "no $env_file: the services run on the chart's values only"
  fi
  helm upgrade --install "$release" charts/mcp-sse --namespace "$namespace" --wait --timeout 5m \
    "${args[@]+"${args[@]}"}" "$@" || die "helm upgrade failed: kubectl -n $namespace get pods,events"
  helm test "$release" --namespace "$namespace" || die "helm test failed: kubectl -n $namespace get pods"
}

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

command="${1:-}"
[ $# -gt 0 ] && shift
case "$command" in
  up) cmd_up "$@" ;;
  down) cmd_down ;;
  restart) cmd_restart "$@" ;;
  status) cmd_status ;;
  logs) cmd_logs "$@" ;;
  test) cmd_test "$@" ;;
  build) detect_engine; scripts/build_images.sh "$@" ;;
  networks)
    create=0
    [ "${1:-}" = --create ] && create=1
    ensure_networks "$create"
    say "networks present: ${NETWORKS[*]}" ;;
  clean) scripts/cleanup.sh "$@" ;;
  local) cmd_local "$@" ;;
  k8s) cmd_k8s "$@" ;;
  -h|--help|help|"") usage ;;
  *) usage; die "unknown command '$command'" ;;
esac
