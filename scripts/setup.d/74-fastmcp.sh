#!/usr/bin/env bash
# fastmcp (PyPI fastmcp), a speed anchor of bench/transport_bench.py (bench/fastmcp_server.py). Its own
# venv (.tools/fastmcp/): fastmcp pins its own range of `mcp`, which must not move the one in .venv.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON="${PYTHON:-python3}"
VENV=.tools/fastmcp
VERSION=4.1.6
STAMP="$VENV/.installed-fastmcp-$VERSION"

[ -f "$STAMP" ] && exit 0
started=$(date +%s)
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "fastmcp==$VERSION" 2>&1 \
  | grep -v '^WARNING: Location' || true
"$VENV/bin/python" - "$VERSION" <<'PY' || { echo "74-fastmcp: install failed" >&2; exit 1; }
import sys
from importlib.metadata import version

import fastmcp  # noqa: F401

assert version("fastmcp") == sys.argv[1], version("fastmcp")
PY
touch "$STAMP"
echo "74-fastmcp: fastmcp $VERSION installed in $VENV in $(( $(date +%s) - started )) s ($(du -sh "$VENV" | cut -f1))" >&2
