"""get_container_logs under docker compose: the Docker Engine API on a unix socket.

No Docker engine runs here, so these tests serve a stand-in Engine API (tests/services/monitoring/
standins.py) on a unix socket: ``/containers/{id}/json`` and ``/containers/{id}/logs`` in the documented
multiplexed stream format (8-byte frame headers), written a few bytes at a time so frames arrive split.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import httpx
from hypothesis import given
from hypothesis import strategies as st
from mcp import Client

from services.monitoring.docker_logs import FrameDecoder
from services.monitoring.service import service
from services.monitoring.settings import Platform
from tests.services.monitoring.standins import Container
from tests.services.monitoring.support import make_settings, nowhere, rpc_call


def written(count: int, start: datetime | None = None) -> list[tuple[datetime, str, str]]:
    """Lines alternating stdout and stderr, one second apart."""
    origin = start or datetime.now(UTC) - timedelta(hours=2)
    return [
        (origin + timedelta(seconds=i), "stderr" if i % 3 == 0 else "stdout", f"message {i}")
        for i in range(count)
    ]


async def test_logs_are_demultiplexed_with_their_streams_newest_last(docker_engine, serve_service, tmp_path):
    engine, socket_path = docker_engine
    engine.containers["mcp-fetch"] = Container(tty=False, lines=written(12))
    url, _ = serve_service(service, make_settings(nowhere(tmp_path), DOCKER_HOST=f"unix://{socket_path}"))

    async with Client(f"{url}/mcp", mode="auto") as client:
        result = await client.call_tool("get_container_logs", {"name": "mcp-fetch", "tail": 4})

    assert result.is_error is False
    logs = result.structured_content
    assert logs["source"] == "docker" and logs["namespace"] is None
    assert [(line["stream"], line["message"]) for line in logs["lines"]] == [
        ("stdout", "message 8"),
        ("stderr", "message 9"),
        ("stdout", "message 10"),
        ("stdout", "message 11"),
    ]
    assert all(line["timestamp"].endswith("123Z") for line in logs["lines"])
    inspect, read = engine.requests
    assert inspect.path == "/containers/mcp-fetch/json"
    assert read.path == "/containers/mcp-fetch/logs"
    assert read.query == {"stdout": "1", "stderr": "1", "timestamps": "1", "tail": "4"}
    assert result.content[0].text.splitlines()[-1].endswith("stdout message 11")


def test_the_default_socket_is_used_when_docker_host_is_unset(docker_engine, serve_service, tmp_path):
    engine, socket_path = docker_engine
    engine.containers["web"] = Container(tty=False, lines=written(2))
    platform = Platform(environ={}, serviceaccount_dir=tmp_path / "none", docker_socket=socket_path)
    url, _ = serve_service(service, make_settings(platform))

    result = rpc_call(url, "get_container_logs", {"name": "web"})
    health = httpx.get(f"{url}/health", timeout=10).json()

    assert [line["message"] for line in result["structuredContent"]["lines"]] == ["message 0", "message 1"]
    assert health["checks"]["container_logs"] == {
        "status": "ok",
        "detail": f"Docker Engine at unix://{socket_path} (Docker 27.3.1, API 1.47)",
    }


def test_tty_containers_stream_raw_and_since_becomes_a_unix_time(docker_engine, serve_service, tmp_path):
    engine, socket_path = docker_engine
    recent = written(5, start=datetime.now(UTC) - timedelta(minutes=3))
    engine.containers["shell"] = Container(tty=True, lines=written(5) + recent)
    url, _ = serve_service(service, make_settings(nowhere(tmp_path), DOCKER_HOST=f"unix://{socket_path}"))
    before = datetime.now(UTC)

    result = rpc_call(url, "get_container_logs", {"name": "shell", "since": "10m"})

    since = int(engine.requests[-1].query["since"])
    assert abs(since - (before - timedelta(minutes=10)).timestamp()) < 30
    lines = result["structuredContent"]["lines"]
    assert [line["message"] for line in lines] == [f"message {i}" for i in range(5)]
    assert all(line["stream"] is None for line in lines)


def test_caps_bound_lines_and_bytes_and_cut_huge_lines(docker_engine, serve_service, tmp_path):
    engine, socket_path = docker_engine
    now = datetime.now(UTC)
    engine.containers["noisy"] = Container(tty=False, lines=[*written(30), (now, "stdout", "y" * 5000)])
    settings = make_settings(
        nowhere(tmp_path),
        DOCKER_HOST=f"unix://{socket_path}",
        MONITORING_MAX_LOG_LINES="10",
        MONITORING_MAX_LOG_BYTES="2000",
    )
    url, _ = serve_service(service, settings)

    result = rpc_call(url, "get_container_logs", {"name": "noisy", "tail": 1000})

    logs = result["structuredContent"]
    assert engine.requests[-1].query["tail"] == "10"
    assert logs["truncated"] is True
    assert len(logs["lines"]) == 1
    assert logs["lines"][0]["message"].endswith("…[line truncated]")
    assert len(logs["lines"][0]["message"].encode()) <= 2000


def test_names_are_validated_and_unknown_containers_explained(docker_engine, serve_service, tmp_path):
    engine, socket_path = docker_engine
    url, _ = serve_service(service, make_settings(nowhere(tmp_path), DOCKER_HOST=f"unix://{socket_path}"))

    bad = [
        rpc_call(url, "get_container_logs", {"name": name}) for name in ("../../info", "a b", "x?all=1", "_x")
    ]
    k8s_only = rpc_call(url, "get_container_logs", {"name": "web", "namespace": "default"})
    missing = rpc_call(url, "get_container_logs", {"name": "ghost.1"})

    for result in bad:
        assert result["isError"] is True and "is not a valid container name" in result["content"][0]["text"]
    assert k8s_only["isError"] is True and "apply to Kubernetes pods" in k8s_only["content"][0]["text"]
    assert missing["isError"] is True
    assert missing["content"][0]["text"] == "no container named ghost.1: No such container: ghost.1"
    assert [request.raw_path for request in engine.requests] == ["/containers/ghost.1/json"]


def test_without_kubernetes_or_a_socket_the_tool_says_what_it_needs(serve_service, tmp_path):
    url, _ = serve_service(service, make_settings(nowhere(tmp_path)))

    result = rpc_call(url, "get_container_logs", {"name": "web"})
    health = httpx.get(f"{url}/health", timeout=10)

    assert result["isError"] is True
    assert (
        "needs Kubernetes (an in-cluster service account) or a Docker Engine socket"
        in (result["content"][0]["text"])
    )
    assert health.status_code == 200
    assert health.json()["checks"]["container_logs"]["status"] == "not_configured"


def test_an_unreachable_engine_makes_health_degraded(serve_service, tmp_path):
    url, _ = serve_service(
        service, make_settings(nowhere(tmp_path), DOCKER_HOST=f"unix://{tmp_path}/gone.sock")
    )

    health = httpx.get(f"{url}/health", timeout=10)
    result = rpc_call(url, "get_container_logs", {"name": "web"})

    assert health.status_code == 503
    assert health.json()["checks"]["container_logs"]["status"] == "down"
    assert result["isError"] is True and "could not be reached" in result["content"][0]["text"]


frames = st.lists(st.tuples(st.sampled_from([1, 2]), st.binary(max_size=40)), max_size=12)


@given(frames=frames, cuts=st.lists(st.integers(min_value=0, max_value=600), max_size=10))
def test_frame_decoder_gives_the_same_payloads_however_the_stream_is_cut(frames, cuts):
    stream = b"".join(bytes([kind, 0, 0, 0]) + len(data).to_bytes(4, "big") + data for kind, data in frames)
    decoder = FrameDecoder()
    pieces: list[tuple[str, bytes]] = []
    bounds = sorted({0, len(stream), *(cut for cut in cuts if cut < len(stream))})
    for start, end in itertools.pairwise(bounds):
        pieces += decoder.feed(stream[start:end])

    joined: dict[str, bytes] = {"stdout": b"", "stderr": b""}
    for name, data in pieces:
        joined[name] += data
    assert joined["stdout"] == b"".join(data for kind, data in frames if kind == 1)
    assert joined["stderr"] == b"".join(data for kind, data in frames if kind == 2)
