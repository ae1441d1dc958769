#!/usr/bin/env bash
# Tools that check the Helm chart without a cluster (tests/deploy/test_chart.py, test_networkpolicies.py).
# Each lives in its own venv under .tools/ because they are large or pin versions that clash:
#   .tools/helm      helm-python-sdk (Helm v4 Go SDK, ~270 MB) + kubernetes-validate: lint, render, schemas
#   .tools/nca       network-config-analyzer (pins networkx/PyYAML): NetworkPolicy connectivity
#   .tools/checkov   checkov (~290 MB): misconfiguration scan of the rendered manifests
# scripts/helm is a `helm` CLI stand-in over .tools/helm.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON="${PYTHON:-python3}"

install_tool() {
  local venv="$1" check="$2"
  shift 2
  # Stamps are prefixed: .tools/checkov is shared with 50-containers.sh (same pinned version).
  local stamp="$venv/.installed-chart-tools-$(printf '%s_' "$@" | tr -c 'A-Za-z0-9._=-' '_')"
  [ -f "$stamp" ] && return 0
  [ -x "$venv/bin/python" ] || "$PYTHON" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
  "$venv/bin/python" -m pip install -q "$@" 2>&1 | grep -v '^WARNING: Location' || true
  "$venv/bin/python" -c "$check" || { echo "60-chart-tools: install into $venv failed" >&2; exit 1; }
  rm -f "$venv"/.installed-chart-tools-*
  touch "$stamp"
}

install_tool .tools/helm "import helm_python, kubernetes_validate, yaml" \
  "helm-python-sdk==0.2.2" "kubernetes-validate==1.37.0" "pyyaml>=6"
install_tool .tools/nca "import nca" "network-config-analyzer==2.1.0"
install_tool .tools/checkov "import checkov" "checkov==3.3.30"
