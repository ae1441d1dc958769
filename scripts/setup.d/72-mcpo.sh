#!/usr/bin/env bash
# mcpo (PyPI mcpo), the MCP-to-OpenAPI proxy that Open WebUI versions older than 0.6.31 need, for
# tests/e2e/test_mcpo.py. Its own venv (.tools/mcpo/): mcpo 0.0.20 uses mcp 1.x APIs
# (streamablehttp_client) that mcp 2 removed, and passes keyword arguments to FastAPI() that FastAPI
# releases after 0.115 reject, so both are pinned here, away from .venv.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON="${PYTHON:-python3}"
VENV=.tools/mcpo
REQUIREMENTS=("mcpo==0.0.20" "mcp==1.30.0" "fastapi==0.115.12")
STAMP="$VENV/.installed-mcpo-0.0.20"

[ -f "$STAMP" ] && exit 0
started=$(date +%s)
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "${REQUIREMENTS[@]}" 2>&1 \
  | grep -v '^WARNING: Location' || true
"$VENV/bin/python" -c "import mcpo.main" || { echo "72-mcpo: install failed" >&2; exit 1; }
touch "$STAMP"
echo "72-mcpo: mcpo installed in $VENV in $(( $(date +%s) - started )) s ($(du -sh "$VENV" | cut -f1))" >&2
