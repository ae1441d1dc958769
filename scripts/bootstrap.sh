#!/usr/bin/env bash
# Install what `make run` / `make test` need on a fresh Debian machine, idempotently.
#   scripts/bootstrap.sh run    the runtime: .venv with mcp-sse[all]
#   scripts/bootstrap.sh test   plus the dev extra, system packages (scripts/apt/*.txt) and the
#                               per-area set-up scripts (scripts/setup.d/*.sh: tool venvs, npm, images)
# System packages are installed with apt-get when run as root; otherwise the script stops and prints
# the exact command to run.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-test}"
PYTHON="${PYTHON:-python3}"

say() { printf 'bootstrap: %s\n' "$*" >&2; }

"$PYTHON" - <<'PY' || { say "Python 3.11 or newer is required (found $("$PYTHON" --version 2>&1))"; exit 1; }
import sys
sys.exit(0 if sys.version_info >= (3, 11) else 1)
PY

apt_packages() {
  # One package per line in scripts/apt/<area>.txt; '#' starts a comment. PACKAGE@COMMAND counts the
  # package as present when COMMAND is on PATH (Node.js and npm often come from elsewhere than Debian).
  cat scripts/apt/*.txt 2>/dev/null | sed 's/#.*//' | tr -s ' \t' '\n' | sed '/^$/d' | sort -u
}

ensure_system_packages() {
  local missing=() entry pkg cmd
  for entry in $(apt_packages); do
    pkg="${entry%@*}"
    cmd=""
    [ "$pkg" != "$entry" ] && cmd="${entry#*@}"
    if [ -n "$cmd" ] && command -v "$cmd" >/dev/null 2>&1; then
      continue
    fi
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    say "missing system packages: ${missing[*]}"
    say "run: sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}"
    exit 1
  fi
  say "installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_venv() {
  local extra="$1" stamp=".venv/.installed-$1"
  [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    say "installing mcp-sse[$extra] into .venv"
    .venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
    .venv/bin/python -m pip install -q -e ".[$extra]" 2>&1 | grep -v '^WARNING: Location' || true
    .venv/bin/python -c "import libmcp, services, fleet" || { say "pip install of mcp-sse[$extra] failed"; exit 1; }
    touch "$stamp"
  fi
}

case "$mode" in
  run)
    ensure_venv all
    ;;
  test)
    ensure_system_packages
    ensure_venv dev
    for script in scripts/setup.d/*.sh; do
      [ -e "$script" ] || continue
      say "running $script"
      bash "$script"
    done
    ;;
  *)
    say "usage: scripts/bootstrap.sh run|test"
    exit 2
    ;;
esac
