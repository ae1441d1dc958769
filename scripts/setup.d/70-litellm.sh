#!/usr/bin/env bash
# The LiteLLM proxy (PyPI litellm with its proxy requirements), for the end-to-end tests in tests/e2e/.
# Each proven version lives in a venv of its own, .tools/litellm-<version>/, because LiteLLM pins many
# packages; never in .venv. tests/e2e/litellm_support.py names the versions (LITELLM_VERSIONS).
#
# A plain `pip install "litellm[proxy]==<version>"` fails on the package index reachable here:
# - 1.109.1: litellm requires certifi>=2026.10.19 and its proxy extra pins litellm-proxy-extras==0.4.113,
#   neither of which the index served;
# - 1.110.2: the proxy extra also needs litellm-proxy==1.110.2, which the index does not serve, and
#   litellm-enterprise==0.1.83.post1 (the index has 0.1.83). The litellm wheel still carries the proxy
#   (litellm/proxy/proxy_server.py and the `litellm` command), so litellm-proxy is left out.
# So: install the litellm wheel with --no-deps, then its Requires-Dist (core + the proxy extra, read from
# the installed metadata) with the certifi floor dropped, litellm-proxy left out, and the exact pins of
# litellm-proxy-extras (Prisma migrations for a database we do not use) and litellm-enterprise relaxed.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON="${PYTHON:-python3}"
LITELLM_VERSIONS=(1.109.1 1.110.2)

say() { printf '70-litellm: %s\n' "$*" >&2; }

install_litellm() {
    local version=$1
    local venv=".tools/litellm-$version"
    local stamp="$venv/.installed-litellm-$version"
    [ -f "$stamp" ] && return 0
    local started
    started=$(date +%s)
    quiet_pip() { "$venv/bin/python" -m pip "$@" 2>&1 | grep -v '^WARNING: Location' || true; }
    [ -x "$venv/bin/python" ] || "$PYTHON" -m venv "$venv"
    quiet_pip install -q --disable-pip-version-check --upgrade pip packaging
    quiet_pip install -q --disable-pip-version-check --no-deps "litellm==$version"

    local requirements="$venv/requirements-litellm.txt"
    "$venv/bin/python" - "$requirements" <<'PY'
"""Write litellm's own Requires-Dist (core + proxy extra) as a requirements file, minus unservable pins."""
import sys
from importlib.metadata import requires

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

RELAXED = {
    "certifi": "",  # the floor (2026.10.19) was newer than the index served
    "litellm-proxy-extras": "<0.5",  # exact pin unservable; only DB migrations live there
    "litellm-enterprise": "<0.2",  # 1.110 pins 0.1.83.post1; the index has 0.1.83
}
lines = []
for spec in requires("litellm") or []:
    req = Requirement(spec)
    if req.marker is not None and not any(req.marker.evaluate({"extra": e}) for e in ("", "proxy")):
        continue
    if req.name == "litellm-proxy":
        continue  # not on the index; the litellm wheel carries the proxy itself
    if req.name in RELAXED:
        req.specifier = SpecifierSet(RELAXED[req.name])
    req.marker = None
    lines.append(str(req))
with open(sys.argv[1], "w", encoding="utf-8") as out:
    out.write("\n".join(sorted(set(lines))) + "\n")
PY
    quiet_pip install -q --disable-pip-version-check -r "$requirements"

    LITELLM_LOCAL_MODEL_COST_MAP=True "$venv/bin/python" - "$version" <<'PY' || { say "install of $version failed: litellm proxy does not import"; return 1; }
import sys
from importlib.metadata import version

import litellm.proxy.proxy_server  # noqa: F401  (imports the whole proxy app, as `litellm --config` does)

assert version("litellm") == sys.argv[1], version("litellm")
PY
    [ -x "$venv/bin/litellm" ] || { say "install of $version failed: no $venv/bin/litellm"; return 1; }
    touch "$stamp"
    say "litellm $version installed in $venv in $(( $(date +%s) - started )) s ($(du -sh "$venv" | cut -f1))"
}

for version in "${LITELLM_VERSIONS[@]}"; do
    install_litellm "$version"
done
# The single-version venv of earlier checkouts (.tools/litellm, 1.109.1) is no longer used.
rm -rf .tools/litellm
