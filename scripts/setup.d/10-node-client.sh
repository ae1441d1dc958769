#!/usr/bin/env bash
# The official MCP TypeScript SDK for tests/libmcp/test_typescript_client.py (pinned by package-lock.json).
set -euo pipefail
cd "$(dirname "$0")/../../tests/libmcp/node"
if [ ! -d node_modules/@modelcontextprotocol/sdk ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
