"""Property: no tool argument and no JSON-RPC message makes any service crash, answer 5xx or hang.

Every tool of every service is called with arguments generated from its own ``inputSchema`` (by
:func:`from_schema`, which covers the JSON Schema pydantic emits; hypothesis-jsonschema 0.23 does not
run on the Hypothesis release in use), mixed with known-interesting values (real paths, real tables,
real pages) and with arguments that break the schema. Each service runs against its real backend or,
for unreachable SaaS, a documented stand-in: a temporary directory (filesystem), a real PostgreSQL
(postgres), a loopback page server (fetch), the GitHub API stand-in of
``harness/fake_github.py`` (github), and for monitoring the Docker Engine and Loki
stand-ins of ``tests/services/monitoring/standins.py`` plus a real Prometheus. Every tool is on.

Asserted for every call: HTTP 200 with a JSON-RPC response; never ``-32603`` (an unexpected exception
in a tool); an error has a code and a message; a result has ``isError`` and a text block (never empty
for an error), and a successful result's ``structuredContent`` validates against the tool's
``outputSchema`` (clients such as the official SDK check it). Bounded: a fixed number of examples per
tool, a tool timeout of 5 s and an HTTP timeout of 15 s (a hang fails the test).
``FUZZ_EXAMPLES=N`` runs N examples per tool.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from libmcp import Server, ServerSettings, Service
from tests.support.servers import free_port, run_app, run_server

SERVICES = ("filesystem", "postgres", "fetch", "github", "monitoring")
MCP_SETTINGS = {"tool_timeout_s": 5}
HTTP_TIMEOUT_S = 15.0
# FUZZ_EXAMPLES=500 for a longer hunt than make test's bounded run.
EXAMPLES_PER_TOOL = int(os.environ.get("FUZZ_EXAMPLES", "30"))
RPC_EXAMPLES = 2 * EXAMPLES_PER_TOOL
INTERNAL_ERROR = -32603


# Targets: each service on its backend, and the values worth trying for its arguments -----------------


class Target:
    """A running service: its URL, its tool definitions, and per-argument values worth trying."""

    def __init__(self, url: str, server: Server, hints: dict[str, list[Any]]) -> None:
        self.url = url
        self.tools = {definition["name"]: definition for definition in server.tool_definitions}
        self.hints = hints
        self.client = httpx.Client(base_url=url, timeout=HTTP_TIMEOUT_S)


def _serve(stack: ExitStack, service: Service, service_settings: Any, hints: dict[str, list[Any]]) -> Target:
    server = Server(service, service_settings, ServerSettings.model_validate(MCP_SETTINGS))
    url = stack.enter_context(run_server(server))
    target = Target(url, server, hints)
    stack.callback(target.client.close)
    return target


@contextlib.contextmanager
def filesystem_target() -> Iterator[Target]:
    from services.filesystem.service import service
    from services.filesystem.settings import FilesystemSettings

    with ExitStack() as stack:
        base = Path(tempfile.mkdtemp(prefix="mcp-fuzz-fs-"))
        stack.callback(shutil.rmtree, base, True)
        rw, ro = base / "rw", base / "ro"
        (rw / "dir" / "sub").mkdir(parents=True)
        ro.mkdir()
        (rw / "notes.txt").write_text("one\ntwo\nthree\n", encoding="utf-8")
        (rw / "dir" / "a.md").write_text("# A\n", encoding="utf-8")
        (rw / "blob.bin").write_bytes(bytes(range(256)))
        (ro / "readme.txt").write_text("read only\n", encoding="utf-8")
        (rw / "link-out").symlink_to("/etc")
        settings_obj = FilesystemSettings.model_validate(
            {"allowed_paths": f"{rw}:rw,{ro}:ro", "filesystem_max_write_bytes": 4096}
        )
        paths = [
            "notes.txt",
            "dir",
            "dir/a.md",
            "dir/sub",
            "blob.bin",
            "link-out",
            "link-out/passwd",
            ".",
            "..",
            "../ro/readme.txt",
            str(rw),
            str(ro / "readme.txt"),
            "/etc/passwd",
            "new/file.txt",
            "dir/new.txt",
            "a\x00b",
            "~",
            "//",
            str(rw) + "/../ro",
        ]
        hints = {
            "path": paths,
            "source": paths,
            "destination": paths,
            "pattern": ["*", "**/*", "**/*.md", "dir/**", "{a,b}*", "[", "../*", "/abs", "***"],
        }
        yield _serve(stack, service, settings_obj, hints)


@contextlib.contextmanager
def postgres_target() -> Iterator[Target]:
    from harness.postgres import Cluster, create_databases, run_async, start_cluster
    from services.postgres.service import service

    with ExitStack() as stack:
        server = start_cluster(shared_preload_libraries="pg_stat_statements", max_connections="60")
        stack.callback(server.destroy)
        run_async(create_databases(server))
        cluster = Cluster(server)
        queries = [
            "SELECT 1",
            "SELECT $1::int",
            "SELECT * FROM pg_class LIMIT 3",
            "SELECT pg_sleep(10)",
            "SELECT 1/0",
            "DROP TABLE x",
            "SELECT '\\x00'",
            "SELECT $1",
            "BEGIN",
            "SELECT 1; SELECT 2",
            "SELECT repeat('x', 100000)",
            "select now(), interval '1 day', 1.5::numeric, '{}'::jsonb",
            "SELECT generate_series(1, 5000)",
            "EXPLAIN SELECT 1",
            "SHOW ALL",
            "\\d",
        ]
        hints = {
            "query": queries,
            "database": ["appdb", "otherdb", "lockeddb", "nope", "postgres"],
            "schema": ["public", "pg_catalog", "nope", "Public"],
            "table": ["pg_class", "nope", "customers"],
            "params": [[], [1], ["x"], [None], [[1, 2]], [{"a": 1}], [1.5e308], ["P1D"]],
        }
        yield _serve(stack, service, cluster.settings(postgres_statement_timeout_s=2), hints)


@contextlib.contextmanager
def fetch_target() -> Iterator[Target]:
    from harness.pageserver import PageServer, Reply
    from services.fetch.service import service
    from services.fetch.settings import FetchSettings

    with ExitStack() as stack:
        site = stack.enter_context(PageServer("127.0.0.1").running())
        html = {"Content-Type": "text/html; charset=utf-8"}
        site.routes.update(
            {
                "/": Reply(
                    headers=html,
                    body=b"<html><body><nav>menu</nav><article><h1>T</h1><p>text</p>"
                    b"<table><tr><td>1</td></tr></table></article></body></html>",
                ),
                "/json": Reply(
                    headers={"Content-Type": "application/json"}, body=b'{"a": [1, 2, {"b": null}]}'
                ),
                "/text": Reply(headers={"Content-Type": "text/plain"}, body="plain ünïcode\n".encode()),
                "/png": Reply(headers={"Content-Type": "image/png"}, body=b"\x89PNG\r\n\x1a\n" + bytes(64)),
                "/redirect": Reply(status=302, headers={"Location": "/"}),
                "/loop": Reply(status=302, headers={"Location": "/loop"}),
                "/empty": Reply(headers=html, body=b""),
                "/broken": Reply(headers=html, body=b"<html><body><p>unclosed <b><i>\xff\xfe"),
                "/error": Reply(status=500, headers=html, body=b"<p>boom</p>"),
            }
        )
        urls = [
            site.url(path)
            for path in (
                "/",
                "/json",
                "/text",
                "/png",
                "/redirect",
                "/loop",
                "/empty",
                "/broken",
                "/error",
                "/missing",
            )
        ]
        urls += [
            "http://127.0.0.1:1/",
            "http://169.254.169.254/latest/meta-data",
            "file:///etc/passwd",
            "ftp://127.0.0.1/",
            "http://[::1]:1/",
            "http://user:pw@127.0.0.1:1/",
            "http:///x",
            "//x",
            "http://10.0.0.1/",
            "http://localhost:1/",
        ]
        settings_obj = FetchSettings.model_validate(
            {
                "fetch_allowed_hosts": "127.0.0.1",
                "fetch_ignore_robots": "true",
                "fetch_timeout_s": 3,
                "fetch_allow_write_methods": "true",
                "fetch_max_response_bytes": 100_000,
            }
        )
        hints = {
            "url": urls,
            "headers": [{"Accept": "application/json"}, {"Host": "evil"}, {"X": "a\r\nB: c"}],
        }
        yield _serve(stack, service, settings_obj, hints)


@contextlib.contextmanager
def github_target() -> Iterator[Target]:
    """The github service against the GitHub API stand-in (the real API is unreachable from here)."""
    from harness.fake_github import FakeGitHub
    from services.github.service import service
    from services.github.settings import GithubSettings
    from tests.services.github.support import TOKEN

    with ExitStack() as stack:
        fake = FakeGitHub(valid_tokens={TOKEN})
        fake.reset()
        fake.slow_release.set()  # octo-org/slow never blocks here
        api = stack.enter_context(run_app(fake.app()))
        settings_obj = GithubSettings.model_validate(
            {"github_token": TOKEN, "github_api_url": api, "github_allow_write": "true"}
        )
        repos = [
            "octo-org/hello-world",
            "octo-org/empty-notes",
            "octo-org/forbidden",
            "octo-org/too-many",
            "octo-org/teapot",
            "octo-org/primary-limit",
            "octo-org/secondary-limit",
            "nobody/nothing",
        ]
        hints = {
            "repo": repos,
            "path": [
                "",
                "README.md",
                "src",
                "src/app.py",
                "logo.png",
                "docs/big.txt",
                "huge.bin",
                "nope",
                "../x",
            ],
            "ref": ["main", "v1.2.0", "nope"],
            "number": [1, 2, 7, 99999],
        }
        yield _serve(stack, service, settings_obj, hints)


@contextlib.contextmanager
def monitoring_target() -> Iterator[Target]:
    """Monitoring against the Docker Engine and Loki stand-ins (neither runs here) and a real Prometheus."""
    from services.monitoring.service import service
    from tests.services.monitoring.standins import Container, DockerStandIn, LokiStandIn
    from tests.services.monitoring.support import make_settings, nowhere, run_prometheus

    with ExitStack() as stack:
        base = Path(tempfile.mkdtemp(prefix="mcp-fz-"))
        stack.callback(shutil.rmtree, base, True)
        now = datetime.now(UTC)
        docker = DockerStandIn(
            containers={
                "web": Container(
                    tty=False, lines=[(now - timedelta(minutes=m), "stdout", f"line {m}") for m in range(20)]
                ),
                "tty": Container(tty=True, lines=[(now, "stdout", "ünï \x1b[31mred")]),
            }
        )
        socket_path = base / "docker.sock"
        stack.enter_context(run_app(docker.app(), uds=str(socket_path)))
        loki = LokiStandIn(
            streams=[
                ({"app": "web"}, [(int(now.timestamp() * 1e9) - i * 10**9, f"log {i}") for i in range(10)])
            ]
        )
        loki_url = stack.enter_context(run_app(loki.app()))
        port = free_port()
        prometheus_url = stack.enter_context(run_prometheus(port, f"127.0.0.1:{port}", "unused"))
        settings_obj = make_settings(
            nowhere(base),
            DOCKER_HOST=f"unix://{socket_path}",
            LOKI_URL=loki_url,
            PROMETHEUS_URL=prometheus_url,
        )
        times = [
            "1h",
            "30s",
            "0s",
            "2026-11-26T10:00:00Z",
            "1700000000",
            "0",
            "-1",
            "99999999999999999",
            "1d",
            "2026-13-45T99:00:00Z",
            "now",
            "1e400",
        ]
        hints = {
            "name": ["web", "tty", "nope", "../etc", "a/b"],
            "since": times,
            "start": times,
            "end": times,
            "query": ['{app="web"}', '{app="web"} |= "log"', 'rate({app="web"}[5m])', "nope", "{"],
            "promql": ["up", "rate(up[5m])", "sum by (job) (up)", "up{", "1/0", "vector(1)"],
            "step": ["15s", "1ms", "0s", "-1s", "1y", "x"],
        }
        yield _serve(stack, service, settings_obj, hints)


STARTERS: dict[str, Callable[[], contextlib.AbstractContextManager[Target]]] = {
    "filesystem": filesystem_target,
    "postgres": postgres_target,
    "fetch": fetch_target,
    "github": github_target,
    "monitoring": monitoring_target,
}


@pytest.fixture(scope="module")
def targets() -> Iterator[Callable[[str], Target]]:
    """``targets(name)``: the service ``name`` on its backend, started on first use for this module."""
    with ExitStack() as stack:
        started: dict[str, Target] = {}

        def get(name: str) -> Target:
            if name not in started:
                started[name] = stack.enter_context(STARTERS[name]())
            return started[name]

        yield get


# Strategies -----------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=10,
)


def from_schema(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values valid for ``schema``: the keywords pydantic's JSON Schema uses (``$ref`` excepted)."""
    if "anyOf" in schema:
        return st.one_of(*(from_schema(branch) for branch in schema["anyOf"]))
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "const" in schema:
        return st.just(schema["const"])
    kind = schema.get("type")
    if isinstance(kind, list):
        return st.one_of(*(from_schema({**schema, "type": one}) for one in kind))
    if kind == "string":
        return _strings(schema)
    if kind == "integer":
        low = schema.get("minimum", schema["exclusiveMinimum"] + 1 if "exclusiveMinimum" in schema else None)
        high = schema.get("maximum", schema["exclusiveMaximum"] - 1 if "exclusiveMaximum" in schema else None)
        return st.integers(min_value=low, max_value=high)
    if kind == "number":
        return st.floats(
            min_value=schema.get("minimum"),
            max_value=schema.get("maximum"),
            allow_nan=False,
            allow_infinity=False,
        )
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "array":
        high = min(schema.get("maxItems", 5), 5)
        return st.lists(
            from_schema(schema.get("items", {})), min_size=min(schema.get("minItems", 0), high), max_size=high
        )
    if kind == "object" or "properties" in schema:
        return _objects(schema)
    return json_values


def _strings(schema: dict[str, Any]) -> st.SearchStrategy[str]:
    low, high = schema.get("minLength", 0), schema.get("maxLength")
    if "pattern" in schema:
        strategy = st.from_regex(schema["pattern"], fullmatch=True)
    elif schema.get("format") == "date-time":
        strategy = st.datetimes(timezones=st.just(UTC)).map(lambda moment: moment.isoformat())
    else:
        strategy = st.text(min_size=low, max_size=min(high or 40, 40))
    return strategy.filter(lambda value: low <= len(value) <= (high if high is not None else len(value)))


def _objects(schema: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    properties: dict[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", ()))
    fixed = st.fixed_dictionaries(
        {key: from_schema(value) for key, value in properties.items() if key in required},
        optional={key: from_schema(value) for key, value in properties.items() if key not in required},
    )
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict) and not properties:
        return st.dictionaries(st.text(min_size=1, max_size=20), from_schema(extra), max_size=4)
    return fixed


def arguments_for(schema: dict[str, Any], hints: dict[str, list[Any]]) -> st.SearchStrategy[Any]:
    """Valid arguments (some fields set to known-interesting values), and arguments breaking the schema."""
    properties: dict[str, Any] = schema.get("properties", {})
    valid = from_schema(schema)

    @st.composite
    def hinted(draw: st.DrawFn) -> dict[str, Any]:
        arguments: dict[str, Any] = dict(draw(valid))
        for key in properties:
            if key in hints and draw(st.booleans()):
                arguments[key] = draw(st.sampled_from(hints[key]))
        return arguments

    broken = st.one_of(
        json_values,  # not an object at all, or arbitrary keys
        st.builds(
            lambda args, key, value: {**args, key: value},
            hinted(),
            st.sampled_from(sorted(properties) or ["unknown"]),
            json_values,
        ),
    )
    return st.one_of(valid, hinted(), hinted(), broken)


rpc_messages = st.fixed_dictionaries(
    {
        "jsonrpc": st.sampled_from(["2.0", "2.0", "2.0", "1.0"]),
        "method": st.sampled_from(
            [
                "initialize",
                "ping",
                "tools/list",
                "tools/call",
                "server/discover",
                "notifications/initialized",
                "notifications/cancelled",
                "resources/list",
                "",
            ]
        ),
    },
    optional={
        "id": st.one_of(st.integers(), st.text(max_size=8), st.none(), st.booleans(), st.floats()),
        "params": st.one_of(
            json_values,
            st.fixed_dictionaries(
                {},
                optional={
                    "name": json_values,
                    "arguments": json_values,
                    "cursor": json_values,
                    "_meta": json_values,
                    "protocolVersion": st.sampled_from(["2024-11-05", "2025-11-25", "bogus"]),
                },
            ),
        ),
    },
)


# Checks ---------------------------------------------------------------------------------------------


def check_response(response: httpx.Response, context: str) -> dict[str, Any] | list[Any] | None:
    assert response.status_code < 500, f"{context}: HTTP {response.status_code}: {response.text[:500]}"
    if response.status_code in (202, 204):
        return None
    payload = response.json()
    for entry in payload if isinstance(payload, list) else [payload]:
        error = entry.get("error") if isinstance(entry, dict) else None
        if error is not None:
            assert error.get("code") != INTERNAL_ERROR, f"{context}: internal error {entry}"
            assert isinstance(error.get("message"), str) and error["message"], f"{context}: {entry}"
    return payload


def check_tool_result(target: Target, tool: str, arguments: Any, response: httpx.Response) -> None:
    context = f"{tool}({json.dumps(arguments)[:300]})"
    payload = check_response(response, context)
    assert response.status_code == 200 and isinstance(payload, dict), f"{context}: {response.text[:300]}"
    if "error" in payload:
        # Only the envelope may be refused: arguments that are not an object.
        assert not isinstance(arguments, dict), f"{context}: {payload}"
        return
    result = payload["result"]
    assert isinstance(result["isError"], bool), f"{context}: {result}"
    text = result["content"][0]["text"]
    assert isinstance(text, str), f"{context}: {result}"
    assert text or not result["isError"], f"{context}: an error without a message: {result}"
    if not result["isError"]:
        schema = target.tools[tool]["outputSchema"]
        jsonschema.Draft202012Validator(schema).validate(result["structuredContent"])


def call_tool(target: Target, tool: str, arguments: Any) -> httpx.Response:
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": tool, "arguments": arguments},
    }
    return target.client.post("/rpc", json=body)


# Tests ----------------------------------------------------------------------------------------------


def _tool_cases() -> list[Any]:
    import importlib

    cases = []
    for name in SERVICES:
        service: Service = importlib.import_module(f"services.{name}.service").service
        cases += [pytest.param(name, tool, id=f"{name}.{tool}") for tool in service.tools]
    return cases


FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES_PER_TOOL,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)


@pytest.mark.parametrize(("service_name", "tool"), _tool_cases())
@FUZZ_SETTINGS
@given(data=st.data())
def test_no_tool_argument_crashes_a_service(
    targets: Callable[[str], Target], service_name: str, tool: str, data: st.DataObject
) -> None:
    target = targets(service_name)
    assert tool in target.tools, f"{tool} is not switched on in the fuzz settings of {service_name}"
    arguments = data.draw(arguments_for(target.tools[tool]["inputSchema"], target.hints), label="arguments")
    check_tool_result(target, tool, arguments, call_tool(target, tool, arguments))


# Regression: found by this fuzzer (fetch answered -32603 for headers HTTP cannot carry).


@pytest.mark.parametrize("headers", [{"X-Name": "café"}, {"\x80": ""}, {"X-Snow": "\u2603"}])
def test_http_request_with_a_non_ascii_header_is_a_clear_error(
    targets: Callable[[str], Target], headers: dict[str, str]
) -> None:
    target = targets("fetch")
    arguments = {"url": target.hints["url"][0], "headers": headers}
    response = call_tool(target, "http_request", arguments)
    check_tool_result(target, "http_request", arguments, response)
    result = response.json()["result"]
    assert result["isError"] and "header" in result["content"][0]["text"].lower(), result


@pytest.mark.parametrize("service_name", SERVICES)
@settings(
    max_examples=RPC_EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    message=st.one_of(rpc_messages, st.lists(rpc_messages, max_size=3)),
    path=st.sampled_from(["/mcp", "/rpc"]),
    tool_index=st.integers(0, 99),
)
def test_no_json_rpc_message_crashes_a_service(
    targets: Callable[[str], Target], service_name: str, message: Any, path: str, tool_index: int
) -> None:
    target = targets(service_name)
    # Tool names the service really has, so tools/call reaches the tools with hostile params.
    if isinstance(message, dict) and isinstance(message.get("params"), dict) and "name" in message["params"]:
        message["params"]["name"] = sorted(target.tools)[tool_index % len(target.tools)]
    headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"}
    response = target.client.post(path, content=json.dumps(message).encode(), headers=headers)
    check_response(response, f"{path} {json.dumps(message)[:300]}")
