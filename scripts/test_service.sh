#!/usr/bin/env bash
# Call one tool of each service through its /mcp endpoint on 127.0.0.1 and say whether it worked.
#
#   scripts/test_service.sh [SERVICE...]      SERVICE: fetch or mcp-fetch (default: all)
#
# The call per service, overridable with DEPLOY_TEST_<NAME>="TOOL JSON-ARGUMENTS":
#   postgres    list_databases {}                          (needs DATABASE_URL to reach a database)
#   fetch       fetch {"url": "https://example.com/"}      (needs outbound HTTPS)
#   filesystem  list_allowed_roots {}
#   github      get_repository {"repo": "octocat/Hello-World"}   (needs the GitHub API)
#   monitoring  get_system_metrics {}
# Ports: DEPLOY_PORT_<NAME> or the registry port. A bearer token is taken from MCP_TOKEN, else the
# first of MCP_AUTH_TOKENS (environment, then the env file). Exit status 1 when a call fails.
set -euo pipefail
cd "$(dirname "$0")/.."

declare -A CALLS=(
  [postgres]='list_databases {}'
  [fetch]='fetch {"url": "https://example.com/", "max_length": 200}'
  [filesystem]='list_allowed_roots {}'
  [github]='get_repository {"repo": "octocat/Hello-World"}'
  [monitoring]='get_system_metrics {}'
)

names=()
for arg in "$@"; do names+=("${arg#mcp-}"); done
ports="$(awk '
  /^services:/ { in_services = 1; next }
  in_services && /^[^ #]/ { in_services = 0 }
  in_services && /^  [a-z0-9_-]+:[[:space:]]*$/ { name = $1; sub(":", "", name) }
  in_services && /^    port:/ { print name, $2 }
' config/services.yaml)"
[ ${#names[@]} -eq 0 ] && mapfile -t names < <(cut -d' ' -f1 <<<"$ports")

token="${MCP_TOKEN:-}"
if [ -z "$token" ]; then
  tokens="${MCP_AUTH_TOKENS:-}"
  env_file="${DEPLOY_ENV_FILE:-secrets/sse.env}"
  if [ -z "$tokens" ] && [ -f "$env_file" ]; then
    tokens="$(sed -n 's/^[[:space:]]*\(export[[:space:]]\+\)\{0,1\}MCP_AUTH_TOKENS=["'\'']\{0,1\}\([^"'\'']*\).*/\2/p' "$env_file" | tail -n1)"
  fi
  token="${tokens%%,*}"
fi

failed=0
for name in "${names[@]}"; do
  default_port="$(awk -v n="$name" '$1 == n { print $2 }' <<<"$ports")"
  [ -n "$default_port" ] || { echo "test_service: unknown service $name" >&2; exit 2; }
  port_variable="DEPLOY_PORT_${name^^}"
  call_variable="DEPLOY_TEST_${name^^}"
  call="${!call_variable:-${CALLS[$name]:-}}"
  [ -n "$call" ] || { echo "test_service: no call known for $name; set $call_variable" >&2; exit 2; }
  tool="${call%% *}"
  arguments="${call#* }"
  [ "$arguments" = "$call" ] && arguments='{}'
  if ! MCP_TOKEN="$token" python3 - "http://127.0.0.1:${!port_variable:-$default_port}/mcp" "$tool" "$arguments" "mcp-$name" <<'PY'
import json, os, sys, urllib.error, urllib.request

url, tool, arguments, label = sys.argv[1:5]
body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": json.loads(arguments)}}
headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
           "MCP-Protocol-Version": "2025-11-25"}
if os.environ.get("MCP_TOKEN"):
    headers["Authorization"] = "Bearer " + os.environ["MCP_TOKEN"]
request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
try:
    with urllib.request.urlopen(request, timeout=120) as response:
        text = response.read().decode()
except urllib.error.HTTPError as exc:
    print(f"{label:<16} {tool}: FAILED: HTTP {exc.code} {exc.read().decode()[:200]}")
    sys.exit(1)
except OSError as exc:
    print(f"{label:<16} {tool}: FAILED: no answer from {url} ({exc})")
    sys.exit(1)
if text.lstrip().startswith(("event:", "data:")):  # an SSE-framed answer: the last data line
    text = [line[5:] for line in text.splitlines() if line.startswith("data:")][-1]
payload = json.loads(text)
if "error" in payload:
    print(f"{label:<16} {tool}: FAILED: {payload['error'].get('message')} (JSON-RPC {payload['error'].get('code')})")
    sys.exit(1)
result = payload["result"]
shown = " ".join(block.get("text", "") for block in result.get("content", []) if block.get("type") == "text")
shown = " ".join(shown.split())[:100]
if result.get("isError"):
    print(f"{label:<16} {tool}: FAILED: {shown}")
    sys.exit(1)
print(f"{label:<16} {tool}: ok: {shown}")
PY
  then
    failed=1
  fi
done
exit "$failed"
