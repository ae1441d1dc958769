#!/usr/bin/env bash
# mcp-remote (npm), the stdio bridge that lets stdio-only MCP clients (Claude Desktop) reach our HTTP
# services, for tests/e2e/test_stdio_bridge.py. Installed under .tools/mcp-remote/, pinned.
set -euo pipefail
cd "$(dirname "$0")/../.."
PREFIX=.tools/mcp-remote
VERSION="0.15.1"
STAMP="$PREFIX/.installed-mcp-remote-$VERSION"

[ -f "$STAMP" ] && exit 0
command -v npm >/dev/null || { echo "73-mcp-remote: npm not found (Node 20+ is needed)" >&2; exit 1; }
mkdir -p "$PREFIX"
npm install --prefix "$PREFIX" --no-audit --no-fund --silent "mcp-remote@$VERSION"
[ -x "$PREFIX/node_modules/.bin/mcp-remote" ] || { echo "73-mcp-remote: install failed" >&2; exit 1; }
touch "$STAMP"
