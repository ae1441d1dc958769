#!/usr/bin/env bash
# The reference MCP fetch server (PyPI mcp-server-fetch), for bench/fetch_bench.py only.
# It lives in its own venv (.tools/fetch-ref/) because it pins its own `mcp` version; never in .venv.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON="${PYTHON:-python3}"
VENV=.tools/fetch-ref
REFERENCE="mcp-server-fetch==2026.10.24"
STAMP="$VENV/.installed-$REFERENCE"

[ -f "$STAMP" ] && exit 0
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
"$VENV/bin/python" -m pip install -q "$REFERENCE" 2>&1 | grep -v '^WARNING: Location' || true
"$VENV/bin/python" -c "import mcp_server_fetch" || { echo "30-fetch-reference: install failed" >&2; exit 1; }
# With Node on the machine, readabilipy (the reference's extractor) runs Readability.js and would
# `npm install` its JavaScript dependencies on the first call; do it here so the benchmark measures
# the reference as it runs once installed. Without Node it uses its pure-Python extractor instead.
if command -v npm >/dev/null 2>&1; then
  "$VENV/bin/python" -c "from readabilipy.simple_json import have_node; raise SystemExit(0 if have_node() else 1)" \
    || { echo "30-fetch-reference: npm install of readabilipy's Readability.js failed" >&2; exit 1; }
fi
touch "$STAMP"
