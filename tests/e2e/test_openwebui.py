"""Open WebUI's own MCP client (open-webui 0.12.4, ``open_webui.utils.mcp.client.MCPClient``) lists and calls
the tools of all five services with a bearer token.

Why not the whole Open WebUI server: a full ``pip install open-webui`` pulls sentence-transformers, torch
and CUDA wheels (several GB, well past what CI's 90 minutes and disk allow), and a chat needs a model.
So ``scripts/setup.d/71-openwebui.sh`` installs the real open-webui wheel without its dependencies plus
the few packages its MCP client modules import, and ``openwebui_driver.py`` runs inside that venv: it
builds the connection the way ``open_webui/utils/tools.py:connect_mcp_server`` does (bearer header from
``key``, ``function_name_filter_list`` through Open WebUI's ``is_string_allowed``) and then everything on
the wire is Open WebUI's code: ``MCPClient.connect`` (an httpx2 client and the SDK ``Client`` in
``mode="auto"``, which probes ``server/discover`` first), ``list_tool_specs`` and ``call_tool``.
The connections are the TOOL_SERVER_CONNECTIONS entries ``mcp-sse config openwebui`` prints (on the
test ports, see client_configs.py); the no-key and filtered ones are written as docs/INTEGRATION.md shows.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.client_configs import printed_openwebui_connections
from tests.e2e.conftest import Fleet, RunningService
from tests.e2e.openwebui_support import (
    probe_call,
    require_openwebui,
    run_driver,
    structured_from,
    tool_server_connection,
)
from tests.e2e.scenarios import E2E_TOKEN

pytestmark = pytest.mark.slow

FILTERED_SERVICE = "filesystem"


@pytest.fixture(scope="module")
def openwebui(e2e_fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Every service driven by Open WebUI's client: ``{"<name>": answer, "<name>/no-token": answer, ...}``.

    The auth-rejection counters are read before and after, as ``"<name>/refused"``.
    """
    require_openwebui()
    if not e2e_fleet.running:
        pytest.skip("no service is written yet")
    keys: list[str] = []
    servers: list[dict[str, Any]] = []
    printed = printed_openwebui_connections(e2e_fleet)
    refused_before = {name: service.auth_rejections() for name, service in e2e_fleet.running.items()}
    for name, service in e2e_fleet.running.items():
        keys.append(name)
        servers.append({"connection": printed[name], "calls": [probe_call(service.probe)]})
        keys.append(f"{name}/no-token")
        servers.append({"connection": tool_server_connection(name, service.url, ""), "calls": []})
    if FILTERED_SERVICE in e2e_fleet.running:
        service = e2e_fleet.running[FILTERED_SERVICE]
        keys.append(f"{FILTERED_SERVICE}/filtered")
        name_filter = ",".join(sorted(service.tools)[:2])
        servers.append(
            {"connection": tool_server_connection(FILTERED_SERVICE, service.url, E2E_TOKEN, name_filter)}
        )
    answers = dict(zip(keys, run_driver(servers, tmp_path_factory.mktemp("openwebui")), strict=True))
    for name, service in e2e_fleet.running.items():
        answers[f"{name}/refused"] = {"before": refused_before[name], "after": service.auth_rejections()}
        answers[f"{name}/connection"] = printed[name]
    return answers


def test_printed_connection_is_a_native_mcp_server_with_a_bearer_key(
    openwebui: dict[str, dict[str, Any]], e2e_service: RunningService
) -> None:
    connection = openwebui[f"{e2e_service.name}/connection"]

    assert connection["type"] == "mcp"
    assert connection["url"] == f"{e2e_service.url}/mcp"
    assert (connection["auth_type"], connection["key"]) == ("bearer", E2E_TOKEN)
    assert connection["config"]["enable"] is True


def test_openwebui_lists_exactly_the_tools_the_service_lists(
    openwebui: dict[str, dict[str, Any]], e2e_service: RunningService
) -> None:
    answer = openwebui[e2e_service.name]

    assert "connect_error" not in answer, answer
    assert [spec["name"] for spec in answer["specs"]] == e2e_service.tools
    assert all(spec["description"] and spec["parameters"]["type"] == "object" for spec in answer["specs"])


def test_openwebui_calls_a_tool_of_the_service(
    openwebui: dict[str, dict[str, Any]], e2e_service: RunningService
) -> None:
    (result,) = openwebui[e2e_service.name]["results"]

    assert result["ok"], result
    e2e_service.probe.check(structured_from(result["content"]))
    e2e_service.probe.check_text(result["content"][0]["text"])


def test_openwebui_without_the_key_cannot_connect(
    openwebui: dict[str, dict[str, Any]], e2e_service: RunningService
) -> None:
    answer = openwebui[f"{e2e_service.name}/no-token"]
    refused = openwebui[f"{e2e_service.name}/refused"]

    assert "connect_error" in answer and "specs" not in answer, answer
    assert refused["after"] > refused["before"]


def test_openwebui_function_name_filter_limits_the_tools(
    openwebui: dict[str, dict[str, Any]], e2e_fleet: Fleet
) -> None:
    service = e2e_fleet.get(FILTERED_SERVICE)
    allowed = sorted(service.tools)[:2]

    answer = openwebui[f"{FILTERED_SERVICE}/filtered"]

    assert [spec["name"] for spec in answer["specs"]] == [tool for tool in service.tools if tool in allowed]
