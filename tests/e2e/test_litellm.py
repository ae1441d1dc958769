"""The real LiteLLM proxy, in each proven version (litellm_support.LITELLM_VERSIONS), lists and calls the
tools of all five services over both transports.

One proxy per version runs for the module, without a database. Its config.yaml is what
``mcp-sse config litellm`` prints (``--auth-env E2E_MCP_TOKEN``; see client_configs.py), once per
transport: ``general_settings.master_key: os.environ/LITELLM_MASTER_KEY`` (LiteLLM 1.110 refuses to start
without a strong master key) and these ``mcp_servers`` entries, plus two written here:

- ``<name>``: ``transport: http``, ``url: .../mcp``, ``auth_type: bearer_token``,
  ``authentication_token: os.environ/E2E_MCP_TOKEN`` (printed for ``--transport http``);
- ``<name>_sse``: the same for ``--transport sse`` (``url: .../sse``), renamed: one config cannot hold
  two servers with one name;
- ``<name>_noauth``: ``transport: http`` without credentials;
- ``filesystem_filtered``: the token written inline and ``allowed_tools``.

LiteLLM answers an empty tool list on any upstream error, so every listing is compared with the exact
set the service itself lists.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.client_configs import TOKEN_ENV, mcp_sse_config, printed_litellm_servers
from tests.e2e.conftest import Fleet, RunningService, require_tool
from tests.e2e.litellm_support import (
    LITELLM_VERSIONS,
    MASTER_KEY_ENV,
    SETUP_SCRIPT,
    LiteLLMProxy,
    McpServerEntry,
    is_installed,
    litellm_bin,
    running_proxy,
    service_entry,
    write_config,
)
from tests.e2e.scenarios import E2E_TOKEN
from tests.support.clients import sdk_client

pytestmark = pytest.mark.slow

# A strong key, as LiteLLM 1.110 demands (it refuses an unset, empty or well-known one such as sk-1234).
MASTER_KEY = f"sk-{secrets.token_hex(32)}"
SERVER_SUFFIX = {"http": "", "sse": "_sse"}
TRANSPORTS = tuple(SERVER_SUFFIX)
FILTERED_SERVICE = "filesystem"


def server_name(service: RunningService, transport: str) -> str:
    return service.name + SERVER_SUFFIX[transport]


def filtered_tools(service: RunningService) -> list[str]:
    """The ``allowed_tools`` of the filtering test: two of the service's own tools."""
    return sorted(service.tools)[:2]


@pytest.fixture(scope="module")
def printed(e2e_fleet: Fleet) -> dict[str, dict[str, dict[str, Any]]]:
    """What ``mcp-sse config litellm`` prints for each transport, on the test ports."""
    if not e2e_fleet.running:
        pytest.skip("no service is written yet")
    return {transport: printed_litellm_servers(e2e_fleet, transport) for transport in TRANSPORTS}


def proxy_servers(
    fleet: Fleet, printed: dict[str, dict[str, dict[str, Any]]]
) -> dict[str, McpServerEntry | dict[str, Any]]:
    servers: dict[str, McpServerEntry | dict[str, Any]] = {}
    for transport, suffix in SERVER_SUFFIX.items():
        servers.update({name + suffix: entry for name, entry in printed[transport].items()})
    for name, service in fleet.running.items():
        servers[f"{name}_noauth"] = service_entry(service.url, "http")
    if FILTERED_SERVICE in fleet.running:
        service = fleet.running[FILTERED_SERVICE]
        servers[f"{FILTERED_SERVICE}_filtered"] = service_entry(
            service.url, "http", token=E2E_TOKEN, allowed_tools=filtered_tools(service)
        )
    return servers


@pytest.fixture(scope="module")
def printed_general_settings() -> dict[str, Any]:
    """The ``general_settings`` block ``mcp-sse config litellm`` prints."""
    settings: dict[str, Any] = yaml.safe_load(mcp_sse_config("litellm"))["general_settings"]
    return settings


def installed(version: str) -> str:
    require_tool(litellm_bin(version), SETUP_SCRIPT)
    assert is_installed(version), f"LiteLLM {version} is not fully installed: re-run bash {SETUP_SCRIPT}"
    return version


@pytest.fixture(scope="module", params=LITELLM_VERSIONS, ids=lambda version: f"litellm-{version}")
def litellm(
    request: pytest.FixtureRequest,
    e2e_fleet: Fleet,
    printed: dict[str, dict[str, dict[str, Any]]],
    printed_general_settings: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LiteLLMProxy]:
    version = installed(request.param)
    directory = tmp_path_factory.mktemp(f"litellm-{version}")
    servers = proxy_servers(e2e_fleet, printed)
    with running_proxy(
        directory,
        servers,
        MASTER_KEY,
        version,
        general_settings=printed_general_settings,
        env={TOKEN_ENV: E2E_TOKEN, MASTER_KEY_ENV: MASTER_KEY},
    ) as proxy:
        yield proxy


@dataclass(frozen=True)
class Listing:
    """One ``GET /mcp-rest/tools/list`` (it fans out to every configured server) and the services'
    401 counters read just before and after it."""

    tools: list[dict[str, Any]]
    server_outcomes: dict[str, dict[str, Any]]
    refused_before: dict[str, float]
    refused_after: dict[str, float]


@pytest.fixture(scope="module")
def listing(litellm: LiteLLMProxy, e2e_fleet: Fleet) -> Listing:
    before = {name: service.auth_rejections() for name, service in e2e_fleet.running.items()}
    result = litellm.list_tools()
    after = {name: service.auth_rejections() for name, service in e2e_fleet.running.items()}
    return Listing(result["tools"], result["server_outcomes"], before, after)


@pytest.fixture(scope="module")
async def gateway_tools(litellm: LiteLLMProxy) -> set[str]:
    """The tool names LiteLLM's own MCP endpoint (``/mcp``) lists to an MCP client."""
    async with sdk_client(litellm.url, token=MASTER_KEY, mode="legacy", timeout=120) as client:
        return {tool.name for tool in (await client.list_tools()).tools}


def tools_of(listing: Listing, server_name: str) -> set[str]:
    return {tool["name"] for tool in listing.tools if tool["mcp_info"]["server_name"] == server_name}


def test_printed_config_authenticates_with_a_bearer_token_from_the_environment(
    printed: dict[str, dict[str, dict[str, Any]]], e2e_fleet: Fleet
) -> None:
    for transport, servers in printed.items():
        assert set(servers) == set(e2e_fleet.running)
        for entry in servers.values():
            assert entry["transport"] == transport
            assert entry["url"].endswith("/mcp" if transport == "http" else "/sse")
            assert entry["auth_type"] == "bearer_token"
            assert entry["authentication_token"] == f"os.environ/{TOKEN_ENV}"


def test_litellm_knows_every_configured_server(
    litellm: LiteLLMProxy, e2e_fleet: Fleet, printed: dict[str, dict[str, dict[str, Any]]]
) -> None:
    assert set(litellm.server_ids()) == set(proxy_servers(e2e_fleet, printed))


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_litellm_lists_exactly_the_tools_the_service_lists(
    listing: Listing, e2e_service: RunningService, transport: str
) -> None:
    name = server_name(e2e_service, transport)

    assert listing.server_outcomes[name]["status"] == "ok", listing.server_outcomes[name]
    assert tools_of(listing, name) == set(e2e_service.tools)
    assert len(e2e_service.tools) == len(set(e2e_service.tools)) > 0


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_litellm_calls_a_tool_of_the_service(
    litellm: LiteLLMProxy, e2e_service: RunningService, transport: str
) -> None:
    server_id = litellm.server_ids()[server_name(e2e_service, transport)]
    probe = e2e_service.probe

    result = litellm.call_tool(server_id, probe.tool, probe.arguments)

    assert result["isError"] is False, result
    probe.check(result["structuredContent"])
    assert result["content"][0]["type"] == "text"
    probe.check_text(result["content"][0]["text"])


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_litellm_mcp_endpoint_lists_the_tools_under_the_server_prefix(
    gateway_tools: set[str], e2e_service: RunningService, transport: str
) -> None:
    """LiteLLM's own MCP endpoint, as an MCP client of LiteLLM sees it: ``<server_name>-<tool>``."""
    prefix = f"{server_name(e2e_service, transport)}-"

    assert {name for name in gateway_tools if name.startswith(prefix)} == {
        prefix + tool for tool in e2e_service.tools
    }


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_litellm_mcp_endpoint_calls_the_prefixed_tool(
    litellm: LiteLLMProxy, e2e_service: RunningService, transport: str
) -> None:
    probe = e2e_service.probe

    async with sdk_client(litellm.url, token=MASTER_KEY, mode="legacy", timeout=120) as client:
        result = await client.call_tool(
            f"{server_name(e2e_service, transport)}-{probe.tool}", probe.arguments
        )

    assert result.is_error is False, result
    assert result.structured_content is not None
    probe.check(result.structured_content)
    probe.check_text(result.content[0].text)  # type: ignore[union-attr]


def test_litellm_without_the_token_gets_401_and_no_tools(
    listing: Listing, gateway_tools: set[str], e2e_service: RunningService
) -> None:
    noauth = f"{e2e_service.name}_noauth"

    assert tools_of(listing, noauth) == set()
    assert not any(name.startswith(f"{noauth}-") for name in gateway_tools)
    assert listing.server_outcomes[noauth]["http_status"] == 401, listing.server_outcomes[noauth]
    assert listing.refused_after[e2e_service.name] > listing.refused_before[e2e_service.name]


def test_litellm_allowed_tools_limits_the_listing(listing: Listing, e2e_fleet: Fleet) -> None:
    service = e2e_fleet.get(FILTERED_SERVICE)

    assert tools_of(listing, f"{FILTERED_SERVICE}_filtered") == set(filtered_tools(service))
    assert len(service.tools) > len(filtered_tools(service))


def test_printed_config_reads_litellms_master_key_from_the_environment(
    printed_general_settings: dict[str, Any],
) -> None:
    assert printed_general_settings == {"master_key": f"os.environ/{MASTER_KEY_ENV}"}


@pytest.mark.parametrize("version", [v for v in LITELLM_VERSIONS if not v.startswith("1.109.")])
@pytest.mark.parametrize(
    ("general_settings", "reason"),
    [({}, "no master key is set"), ({"master_key": "sk-1234"}, "publicly known default")],
    ids=["unset", "well-known-sk-1234"],
)
def test_litellm_1_110_refuses_to_start_without_a_strong_master_key(
    tmp_path: Path, version: str, general_settings: dict[str, str], reason: str
) -> None:
    """Why the printed block carries ``general_settings.master_key``: without a strong one, no proxy."""
    config = write_config(tmp_path / "config.yaml", {}, general_settings=general_settings)
    proxy = LiteLLMProxy(config, MASTER_KEY, installed(version))

    with pytest.raises(RuntimeError, match="litellm exited") as refused:
        proxy.start(timeout=120)

    assert "LiteLLM proxy refused to start" in str(refused.value)
    assert reason in str(refused.value)
