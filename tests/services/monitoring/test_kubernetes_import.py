"""The ``kubernetes`` client (about 25 MB of memory) is imported only where Kubernetes is the log source.

Outside a cluster the service must not load it; in a pod (``KUBERNETES_SERVICE_HOST`` plus a
service-account token) it is loaded when the log backend is chosen. Reading pod logs through it is
covered by test_container_logs_kubernetes.py (against the API server stand-in).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.servers import REPO_ROOT, ServiceProcess

# The backend chosen in a fresh interpreter, and whether ``kubernetes`` was imported before and after.
PROBE = """
import json, sys
from services.monitoring.service import _container_logs_backend
from services.monitoring.settings import MonitoringSettings, Platform
from pathlib import Path

account = Path(sys.argv[1])
environ = json.loads(sys.argv[2])
before = any(name.split(".")[0] == "kubernetes" for name in sys.modules)
platform = Platform(environ=environ, serviceaccount_dir=account, docker_socket=account / "no-docker.sock")
backend, problem = _container_logs_backend(MonitoringSettings().on_platform(platform))
after = any(name.split(".")[0] == "kubernetes" for name in sys.modules)
print(json.dumps({"before": before, "after": after, "backend": type(backend).__name__, "problem": problem}))
"""


def probe(account: Path, environ: dict[str, str]) -> dict[str, object]:
    completed = subprocess.run(
        [sys.executable, "-c", PROBE, str(account), json.dumps(environ)],
        cwd=REPO_ROOT,
        env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin", "MCP_ENV_FILE": "/dev/null"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result: dict[str, object] = json.loads(completed.stdout)
    return result


def imported_top_level_packages(importtime_log: str) -> set[str]:
    """Top-level package names from ``-X importtime`` lines (``import time: 12 | 34 |   name.sub``)."""
    names = set()
    for line in importtime_log.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


def test_a_served_monitoring_service_without_a_cluster_never_imports_kubernetes(tmp_path: Path) -> None:
    env = {
        "PYTHONPROFILEIMPORTTIME": "1",  # the child logs every module it imports on stderr
        "KUBERNETES_SERVICE_HOST": "",
        "DOCKER_HOST": "",
        "MCP_LOG_LEVEL": "WARNING",
    }
    with ServiceProcess("monitoring", env=env) as served:
        health = httpx.get(f"{served.url}/health", timeout=10).json()
        body = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "get_container_logs", "arguments": {"name": "web"}},
        }
        call = httpx.post(f"{served.url}/rpc", json=body, timeout=30).json()
        stopped = served.stop()
    assert stopped is not None
    _, output = stopped

    packages = imported_top_level_packages(output)
    assert {"libmcp", "services", "psutil", "httpx"} <= packages  # the log did record the service's imports
    assert "kubernetes" not in packages
    assert health["checks"]["container_logs"]["status"] in ("not_configured", "ok")
    assert call["result"]["isError"] is True or call["result"]["structuredContent"]["source"] == "docker"


def test_no_cluster_leaves_kubernetes_unimported(tmp_path: Path) -> None:
    result = probe(tmp_path / "no-account", {})

    assert result == {
        "before": False,
        "after": False,
        "backend": "NoneType",
        "problem": result["problem"],
    }
    assert "neither is available here" in str(result["problem"])


def test_an_in_cluster_service_account_loads_the_kubernetes_client(tmp_path: Path) -> None:
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text("a-service-account-token")
    (account / "namespace").write_text("mcp")
    (account / "ca.crt").write_text("placeholder: the client only checks it is there; no request is made")

    result = probe(account, {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": "6443"})

    assert result == {"before": False, "after": True, "backend": "KubeLogs", "problem": ""}
