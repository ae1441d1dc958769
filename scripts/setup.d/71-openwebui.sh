#!/usr/bin/env bash
# Open WebUI's own MCP client code (PyPI open-webui), for tests/e2e/test_openwebui.py.
# It lives in its own venv (.tools/openwebui/) because open-webui pins ~90 packages exactly.
#
# The full install does not fit CI (sentence-transformers pulls torch and CUDA wheels: several GB), and
# the tests need only open_webui.utils.mcp.client (the MCPClient every MCP tool server goes through) and
# open_webui.utils.misc (its tool-name filter). So: the open-webui wheel with --no-deps, then exactly the
# packages those modules import (open_webui/__init__.py, env.py, utils/json_codec.py, utils/misc.py,
# utils/mcp/client.py), at the versions open-webui pins where it pins them.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON="${PYTHON:-python3}"
VENV=.tools/openwebui
OPENWEBUI_VERSION="0.12.4"
STAMP="$VENV/.installed-open-webui-$OPENWEBUI_VERSION"

[ -f "$STAMP" ] && exit 0
say() { printf '71-openwebui: %s\n' "$*" >&2; }
# pip lists every open-webui requirement left out on purpose; only real failures matter (checked below).
quiet_pip() {
  "$VENV/bin/python" -m pip "$@" 2>&1 \
    | grep -v -e '^WARNING: Location' -e "^ERROR: pip's dependency resolver" -e '^open-webui .* requires ' || true
}

started=$(date +%s)
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
quiet_pip install -q --disable-pip-version-check --upgrade pip packaging
quiet_pip install -q --disable-pip-version-check --no-deps "open-webui==$OPENWEBUI_VERSION"

requirements="$VENV/requirements-openwebui.txt"
"$VENV/bin/python" - "$requirements" <<'PY'
"""Requirements for the MCP client modules: open-webui's own pin where it has one, else unpinned."""
import sys
from importlib.metadata import requires

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

# What the imported modules need (directly or through a package open-webui pins).
NEEDED = {
    "aiohttp", "beautifulsoup4", "cryptography", "httpx2", "jsonschema", "markdown", "mcp", "orjson",
    "pydantic", "python-dotenv", "python-engineio", "python-mimeparse", "python-socketio", "referencing",
    "typer", "uvicorn",
}
pinned = {}
for spec in requires("open-webui") or []:
    req = Requirement(spec)
    if req.marker is None and canonicalize_name(req.name) in NEEDED:
        pinned[canonicalize_name(req.name)] = str(req)
lines = [pinned.get(name, name) for name in sorted(NEEDED)]
with open(sys.argv[1], "w", encoding="utf-8") as out:
    out.write("\n".join(lines) + "\n")
PY
quiet_pip install -q --disable-pip-version-check -r "$requirements"

probe_dir=$(mktemp -d)
trap 'rm -rf "$probe_dir"' EXIT
DATA_DIR="$probe_dir" WEBUI_SECRET_KEY=setup-probe "$VENV/bin/python" - <<PY \
  || { say "install failed: open_webui.utils.mcp.client does not import"; exit 1; }
from importlib.metadata import version
from open_webui.utils.mcp.client import MCPClient  # noqa: F401
from open_webui.utils.misc import is_string_allowed  # noqa: F401
assert version("open-webui") == "$OPENWEBUI_VERSION", version("open-webui")
PY
touch "$STAMP"
say "open-webui $OPENWEBUI_VERSION (MCP client only) installed in $VENV in $(( $(date +%s) - started )) s ($(du -sh "$VENV" | cut -f1))"
