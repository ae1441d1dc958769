"""Property: no request body makes a server answer 500 or hang (hypothesis, bounded examples)."""

from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.libmcp.demo_service import service

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
methods = st.sampled_from(
    [
        "initialize",
        "ping",
        "tools/list",
        "tools/call",
        "server/discover",
        "notifications/initialized",
        "notifications/cancelled",
        "nope",
    ]
)
tool_names = st.sampled_from(["echo", "noop", "fail", "crash", "sleep", "missing"])
messages = st.fixed_dictionaries(
    {"jsonrpc": st.sampled_from(["2.0", "2.0", "1.0", None]), "method": methods},
    optional={
        "id": st.one_of(st.integers(), st.text(max_size=8), st.none(), st.booleans()),
        "params": st.one_of(
            json_values,
            st.fixed_dictionaries(
                {"name": tool_names},
                optional={
                    "arguments": st.one_of(
                        json_values,
                        st.fixed_dictionaries(
                            {},
                            optional={
                                "text": json_values,
                                "times": json_values,
                                "seconds": st.floats(0, 0.01),
                                "reason": st.text(max_size=10),
                            },
                        ),
                    ),
                    "_meta": st.one_of(
                        json_values,
                        st.just(
                            {
                                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                                "io.modelcontextprotocol/clientCapabilities": {},
                            }
                        ),
                    ),
                    "cursor": json_values,
                },
            ),
        ),
    },
)
bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda value: json.dumps(value).encode()),
    messages.map(lambda value: json.dumps(value).encode()),
    st.lists(messages, max_size=3).map(lambda value: json.dumps(value).encode()),
)
headers = st.fixed_dictionaries(
    {},
    optional={
        "MCP-Protocol-Version": st.sampled_from(
            ["2024-11-05", "2025-06-18", "2025-11-25", "2026-07-28", "x", ""]
        ),
        "Mcp-Method": st.sampled_from(["tools/call", "tools/list", ""]),
        "Mcp-Name": st.sampled_from(["echo", "=?base64?!!?=", ""]),
    },
)


@pytest.fixture(scope="module")
def fuzz_target():
    from libmcp import Server, ServerSettings
    from tests.support.servers import run_server

    server = Server(service, None, ServerSettings.model_validate({"tool_timeout_s": 2}))
    with run_server(server) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield client


@pytest.mark.parametrize("path", ["/mcp", "/rpc"])
@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies, sent_headers=headers)
def test_no_body_gets_a_5xx_or_hangs(fuzz_target, path, body, sent_headers):
    response = fuzz_target.post(
        path, content=body, headers={"Content-Type": "application/json", **sent_headers}
    )
    assert response.status_code < 500, response.text
    if response.status_code not in (202, 204):
        assert isinstance(response.json(), dict | list)
