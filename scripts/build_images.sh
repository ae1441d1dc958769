#!/usr/bin/env bash
# Build the mcp-sse images, one per service, from the one Dockerfile with --build-arg SERVICE=<name>.
#
#   scripts/build_images.sh [--offline] [NAME...]      NAME: postgres, fetch, ... (default: all)
#
# Tags come from config/services.yaml (image repository) and pyproject.toml (version):
# mcp-sse/<name>:<version>. --offline installs only from ./wheels
# (scripts/setup.d/50-containers.sh downloads them) and builds with --network=none.
# Engine: $CONTAINER_ENGINE, else docker when its daemon answers, else podman.
# Prints one line per image: name, build seconds, size in MB.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'build_images: %s\n' "$*" >&2; }

offline=0
names=()
for arg in "$@"; do
  case "$arg" in
    --offline) offline=1 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    -*) say "unknown option $arg"; exit 2 ;;
    *) names+=("${arg#mcp-}") ;;
  esac
done

engine="${CONTAINER_ENGINE:-}"
if [ -z "$engine" ]; then
  if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    engine=docker
  elif command -v podman >/dev/null; then
    engine=podman
  else
    say "no container engine: install Docker or podman (or set CONTAINER_ENGINE)"
    exit 1
  fi
fi
if [ "$engine" = podman ] && [ -z "${CONTAINERS_CONF:-}" ] && [ -f .tools/podman/containers.conf ]; then
  export CONTAINERS_CONF="$PWD/.tools/podman/containers.conf"
fi

version="$(sed -n 's/^version = "\(.*\)"$/\1/p' pyproject.toml | head -n1)"
[ -n "$version" ] || { say "no version in pyproject.toml"; exit 1; }

# "<name> <image repository>" per service, in registry order.
registry="$(awk '
  /^services:/ { in_services = 1; next }
  in_services && /^[^ #]/ { in_services = 0 }
  in_services && /^  [a-z0-9_-]+:[[:space:]]*$/ { name = $1; sub(":", "", name) }
  in_services && /^    image:/ { print name, $2 }
' config/services.yaml)"
[ -n "$registry" ] || { say "no services found in config/services.yaml"; exit 1; }
if [ ${#names[@]} -eq 0 ]; then
  mapfile -t names < <(cut -d' ' -f1 <<<"$registry")
fi

flags=()
[ "$engine" = podman ] && flags+=(--format docker)   # OCI images drop HEALTHCHECK
if [ "$offline" -eq 1 ]; then
  ls wheels/*.whl >/dev/null 2>&1 || { say "--offline needs ./wheels (run scripts/setup.d/50-containers.sh)"; exit 1; }
  flags+=(--network=none --build-arg PIP_OFFLINE=1)
fi

build() {
  local name="$1" tag="$2" started size
  local args=("${flags[@]}" --build-arg "SERVICE=$name" -f Dockerfile)
  started=$(date +%s)
  # podman keeps each build stage as an untagged image, which is also its build cache. Tagging the
  # stage (<tag>-build) keeps that cache while the stale copies of earlier builds are pruned below.
  if [ "$engine" = podman ] &&
    ! "$engine" build "${args[@]}" --target build -t "$tag-build" . >"${BUILD_LOG:-/dev/null}" 2>&1; then
    say "FAILED: the build stage of $tag; rerun with BUILD_LOG=/dev/stderr to see the build output"
    return 1
  fi
  if ! "$engine" build "${args[@]}" -t "$tag" . >"${BUILD_LOG:-/dev/null}" 2>&1; then
    say "FAILED: $tag; rerun with BUILD_LOG=/dev/stderr to see the build output"
    return 1
  fi
  size=$("$engine" image inspect --format '{{.Size}}' "$tag")
  printf '%-28s %4ss %6s MB\n' "$tag" "$(($(date +%s) - started))" "$((size / 1000000))"
}

for name in "${names[@]}"; do
  repository="$(awk -v n="$name" '$1 == n { print $2 }' <<<"$registry")"
  [ -n "$repository" ] || { say "unknown service $name; known: $(cut -d' ' -f1 <<<"$registry" | xargs)"; exit 2; }
  build "$name" "$repository:$version"
done
# Untagged images of ours (label io.mcp-sse.stage): replaced service images and stale build stages.
"$engine" image prune --force --filter label=io.mcp-sse.stage >/dev/null 2>&1 || true
