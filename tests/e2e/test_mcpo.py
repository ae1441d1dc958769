"""mcpo 0.0.20 (the MCP-to-OpenAPI proxy for Open WebUI before 0.6.31) serves every service as OpenAPI tools.

mcpo runs in its own venv (``scripts/setup.d/72-mcpo.sh``: it needs mcp 1.x). Its config names each
service twice, ``<name>`` (``type: streamable-http``, ``.../mcp``) and ``<name>_sse`` (``type: sse``,
``.../sse``), with our bearer token in ``headers``, which is the config docs/INTEGRATION.md shows.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Fleet, RunningService, bearer, require_tool
from tests.e2e.scenarios import E2E_TOKEN
from tests.support.servers import REPO_ROOT, free_port

pytestmark = pytest.mark.slow

MCPO = REPO_ROOT / ".tools" / "mcpo" / "bin" / "mcpo"
SETUP_SCRIPT = "scripts/setup.d/72-mcpo.sh"
MCPO_KEY = "mcpo-e2e-key"
ROUTES = {"http": "", "sse": "_sse"}


def mcpo_config(fleet: Fleet) -> dict[str, Any]:
    servers: dict[str, Any] = {}
    for name, service in fleet.running.items():
        headers = bearer(E2E_TOKEN)
        servers[name] = {"type": "streamable-http", "url": f"{service.url}/mcp", "headers": headers}
        servers[f"{name}_sse"] = {"type": "sse", "url": f"{service.url}/sse", "headers": headers}
    return {"mcpServers": servers}


@pytest.fixture(scope="module")
def mcpo(e2e_fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """mcpo on a free loopback port; yields its base URL once every configured route answers."""
    require_tool(MCPO, SETUP_SCRIPT)
    if not e2e_fleet.running:
        pytest.skip("no service is written yet")
    workdir = tmp_path_factory.mktemp("mcpo")
    config = mcpo_config(e2e_fleet)
    (workdir / "config.json").write_text(json.dumps(config), encoding="utf-8")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with (workdir / "mcpo.log").open("wb") as log:
        process = subprocess.Popen(
            [
                str(MCPO),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--config",
                "config.json",
                "--api-key",
                MCPO_KEY,
            ],
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        pending = set(config["mcpServers"])
        while pending and time.monotonic() < deadline:
            assert process.poll() is None, (workdir / "mcpo.log").read_text()[-3000:]
            for route in sorted(pending):
                with contextlib.suppress(httpx.HTTPError):
                    response = httpx.get(f"{url}/{route}/openapi.json", headers=bearer(MCPO_KEY), timeout=5)
                    if response.status_code == 200 and response.json().get("paths"):
                        pending.discard(route)
            time.sleep(0.25)
        assert not pending, (
            f"mcpo routes never answered: {pending}\n" + (workdir / "mcpo.log").read_text()[-3000:]
        )
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.mark.parametrize("transport", ROUTES)
def test_mcpo_publishes_one_openapi_operation_per_tool(
    mcpo: str, e2e_service: RunningService, transport: str
) -> None:
    route = e2e_service.name + ROUTES[transport]

    spec = httpx.get(f"{mcpo}/{route}/openapi.json", headers=bearer(MCPO_KEY), timeout=30).json()

    assert set(spec["paths"]) == {f"/{tool}" for tool in e2e_service.tools}
    assert all("post" in operation for operation in spec["paths"].values())


@pytest.mark.parametrize("transport", ROUTES)
def test_mcpo_calls_a_tool_of_the_service(mcpo: str, e2e_service: RunningService, transport: str) -> None:
    route = e2e_service.name + ROUTES[transport]
    probe = e2e_service.probe

    response = httpx.post(
        f"{mcpo}/{route}/{probe.tool}", json=probe.arguments, headers=bearer(MCPO_KEY), timeout=120
    )

    assert response.status_code == 200, response.text
    probe.check_text(json.dumps(response.json(), ensure_ascii=False))
