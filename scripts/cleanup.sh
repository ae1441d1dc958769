#!/usr/bin/env bash
# Remove what ./deploy.sh up made: the containers, and on request the images and the networks.
#
#   scripts/cleanup.sh [--images] [--networks]
#
# --images     also remove the mcp-sse images (every service's, the build stages' cache, and the
#              mcp-sse/base image that builds before the single Dockerfile made)
# --networks   also remove litellm-net and postgres-net; refused while other containers still use them
# Volumes on the host (./workspace, ./shared) are never touched.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'cleanup: %s\n' "$*" >&2; }

images=0 networks=0
for arg in "$@"; do
  case "$arg" in
    --images) images=1 ;;
    --networks) networks=1 ;;
    *) say "unknown option $arg (use --images, --networks)"; exit 2 ;;
  esac
done

engine="${CONTAINER_ENGINE:-}"
if [ -z "$engine" ]; then
  if command -v docker >/dev/null && docker info >/dev/null 2>&1; then engine=docker; else engine=podman; fi
fi
command -v "$engine" >/dev/null || { say "no container engine ($engine) found"; exit 1; }

containers=(mcp-postgres mcp-fetch mcp-filesystem mcp-github mcp-monitoring)
present=()
for container in "${containers[@]}"; do
  "$engine" container inspect "$container" >/dev/null 2>&1 && present+=("$container")
done
if [ ${#present[@]} -gt 0 ]; then
  # Stop first (SIGTERM, 15 s grace like compose) so in-flight calls drain, then remove.
  "$engine" stop --time 15 "${present[@]}" >/dev/null
  "$engine" rm --force "${present[@]}" >/dev/null
  say "removed containers: ${present[*]}"
fi

if [ "$images" = 1 ]; then
  version="$(sed -n 's/^version = "\(.*\)"$/\1/p' pyproject.toml | head -n1)"
  # base: the separate runtime image of earlier versions, still on hosts that built one.
  for repository in base postgres fetch filesystem github monitoring; do
    for tag in "mcp-sse/$repository:$version" "mcp-sse/$repository:$version-build"; do
      if "$engine" image inspect "$tag" >/dev/null 2>&1; then
        "$engine" rmi "$tag" >/dev/null
        say "removed image $tag"
      fi
    done
  done
  # Untagged images of ours: build stages kept as cache, and service images replaced by newer builds.
  "$engine" image prune --force --filter label=io.mcp-sse.stage >/dev/null
fi

if [ "$networks" = 1 ]; then
  for network in litellm-net postgres-net; do
    "$engine" network inspect "$network" >/dev/null 2>&1 || continue
    if "$engine" network rm "$network" >/dev/null 2>&1; then
      say "removed network $network"
    else
      say "kept network $network: other containers still use it"
    fi
  done
fi
