#!/usr/bin/env bash
# The official MCP TypeScript SDK's server for bench/transport_bench.py's TypeScript anchor
# (bench/node/server.mjs, pinned by package-lock.json).
set -euo pipefail
cd "$(dirname "$0")/../../bench/node"
if [ ! -d node_modules/@modelcontextprotocol/sdk ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
