#!/usr/bin/env bash
# Ask each service's /health on its published 127.0.0.1 port and print what it says.
#
#   scripts/health_check.sh [--quiet] [--strict] [SERVICE...]     SERVICE: fetch or mcp-fetch (default: all)
#
# ok (200), degraded (503: the service answers, a backend such as the database is down) or down (no
# answer). Exit status 1 when a service is down, or degraded with --strict. Ports: DEPLOY_PORT_<NAME>
# (as docker-compose.yml) or the registry port. --quiet prints nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

quiet=0 strict=0 names=()
for arg in "$@"; do
  case "$arg" in
    --quiet) quiet=1 ;;
    --strict) strict=1 ;;
    -*) echo "health_check: unknown option $arg" >&2; exit 2 ;;
    *) names+=("${arg#mcp-}") ;;
  esac
done

# "<name> <port>" per service, from the registry.
ports="$(awk '
  /^services:/ { in_services = 1; next }
  in_services && /^[^ #]/ { in_services = 0 }
  in_services && /^  [a-z0-9_-]+:[[:space:]]*$/ { name = $1; sub(":", "", name) }
  in_services && /^    port:/ { print name, $2 }
' config/services.yaml)"
[ ${#names[@]} -eq 0 ] && mapfile -t names < <(cut -d' ' -f1 <<<"$ports")

status_of() {  # prints the HTTP status of GET URL, or 000 when nothing answers
  if command -v curl >/dev/null; then
    curl -s -o /dev/null -m 5 -w '%{http_code}' "$1" || true
  else
    python3 - "$1" <<'PY'
import sys, urllib.error, urllib.request
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=5).status)
except urllib.error.HTTPError as exc:
    print(exc.code)
except OSError:
    print("000")
PY
  fi
}

failed=0
for name in "${names[@]}"; do
  default_port="$(awk -v n="$name" '$1 == n { print $2 }' <<<"$ports")"
  [ -n "$default_port" ] || { echo "health_check: unknown service $name" >&2; exit 2; }
  variable="DEPLOY_PORT_${name^^}"
  port="${!variable:-$default_port}"
  code="$(status_of "http://127.0.0.1:$port/health")"
  case "$code" in
    200) verdict=ok ;;
    503) verdict="degraded (a backend is down: curl http://127.0.0.1:$port/health)"; [ "$strict" = 1 ] && failed=1 ;;
    000|"") verdict="down (no answer on 127.0.0.1:$port)"; failed=1 ;;
    *) verdict="down (HTTP $code)"; failed=1 ;;
  esac
  [ "$quiet" = 1 ] || printf '%-16s %s\n' "mcp-$name" "$verdict"
done
exit "$failed"
