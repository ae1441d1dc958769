#!/usr/bin/env bash
# The LiteLLM proxy (PyPI litellm with its proxy extra), for the end-to-end tests in tests/e2e/.
# It lives in its own venv (.tools/litellm/) because it pins many packages; never in .venv.
#
# A plain `pip install "litellm[proxy]==$LITELLM_VERSION"` fails on the package index reachable here:
# litellm requires certifi>=2026.10.19 and its proxy extra pins litellm-proxy-extras==0.4.113, neither of
# which the index serves. So: install the litellm wheel with --no-deps, then install its Requires-Dist
# (core + the proxy extra, read from the installed metadata) with the certifi floor dropped and the
# litellm-proxy-extras pin relaxed (that package only carries Prisma migrations for a database we do not use).
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON="${PYTHON:-python3}"
VENV=.tools/litellm
LITELLM_VERSION="1.109.1"
STAMP="$VENV/.installed-litellm-$LITELLM_VERSION"

[ -f "$STAMP" ] && exit 0
say() { printf '70-litellm: %s\n' "$*" >&2; }
quiet_pip() { "$VENV/bin/python" -m pip "$@" 2>&1 | grep -v '^WARNING: Location' || true; }

started=$(date +%s)
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
quiet_pip install -q --disable-pip-version-check --upgrade pip packaging
quiet_pip install -q --disable-pip-version-check --no-deps "litellm==$LITELLM_VERSION"

requirements="$VENV/requirements-litellm.txt"
"$VENV/bin/python" - "$requirements" <<'PY'
"""Write litellm's own Requires-Dist (core + proxy extra) as a requirements file, minus unservable pins."""
import sys
from importlib.metadata import requires

from packaging.requirements import Requirement

lines = []
for spec in requires("litellm") or []:
    req = Requirement(spec)
    if req.marker is not None and not any(req.marker.evaluate({"extra": e}) for e in ("", "proxy")):
        continue
    if req.name == "certifi":
        req.specifier = type(req.specifier)("")  # the floor (2026.10.19) is newer than the index serves
    elif req.name == "litellm-proxy-extras":
        req.specifier = type(req.specifier)("<0.5")  # exact pin unservable; only DB migrations live there
    req.marker = None
    lines.append(str(req))
with open(sys.argv[1], "w", encoding="utf-8") as out:
    out.write("\n".join(sorted(set(lines))) + "\n")
PY
quiet_pip install -q --disable-pip-version-check -r "$requirements"

LITELLM_LOCAL_MODEL_COST_MAP=True "$VENV/bin/python" - <<PY || { say "install failed: litellm proxy does not import"; exit 1; }
from importlib.metadata import version
import litellm.proxy.proxy_server  # noqa: F401  (imports the whole proxy app, as \`litellm --config\` does)
assert version("litellm") == "$LITELLM_VERSION", version("litellm")
PY
touch "$STAMP"
say "litellm $LITELLM_VERSION installed in $VENV in $(( $(date +%s) - started )) s ($(du -sh "$VENV" | cut -f1))"
