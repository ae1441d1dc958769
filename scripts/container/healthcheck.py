"""Container healthcheck: GET /health on the service's own port, without curl in the image.

Usage: ``healthcheck.py DEFAULT_PORT [--allow-degraded]``. The port is ``$MCP_PORT`` when set, else
DEFAULT_PORT. Exit status 0 when /health answers 200; with ``--allow-degraded`` a 503 (the process
serves, a backend such as the database is down) also counts as alive. Anything else exits 1.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def main(argv: list[str]) -> int:
    if not argv or not argv[0].isdigit():
        print("usage: healthcheck.py DEFAULT_PORT [--allow-degraded]", file=sys.stderr)
        return 2
    port = os.environ.get("MCP_PORT") or argv[0]
    accepted = {200, 503} if "--allow-degraded" in argv[1:] else {200}
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=4) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except OSError as exc:
        print(f"/health unreachable on port {port}: {exc}", file=sys.stderr)
        return 1
    if status not in accepted:
        print(f"/health answered {status} on port {port}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
