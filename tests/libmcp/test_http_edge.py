"""The HTTP edge: head size and count, head and body timeouts, connection caps, keep-alive, proxies.

Every test talks raw HTTP/1.1 over real loopback sockets to a served demo app (``serve_service``
serves with the runner's uvicorn configuration, the edge included), so what is pinned down is what a
hostile client meets on the wire.
"""

from __future__ import annotations

import contextlib
import os
import resource
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from libmcp import http_edge
from libmcp.config import SettingsError
from libmcp.runner import build_server
from tests.libmcp.conftest import demo_process, rpc
from tests.libmcp.demo_service import service
from tests.support.servers import REPO_ROOT, free_port

HEALTH = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"


def connect(url: str, source: str = "127.0.0.1") -> socket.socket:
    """A TCP connection to the served app, from ``source`` (any 127.0.0.0/8 address is local)."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=10, source_address=(source, 0))
    return sock


def read_answer(sock: socket.socket, timeout: float = 10) -> bytes:
    """One whole response (head and Content-Length body), or what came before the peer closed."""
    return read_answers(sock, 1, timeout)[0]


def read_answers(sock: socket.socket, count: int, timeout: float = 10) -> list[bytes]:
    """``count`` responses in a row (pipelined answers may share a segment); fewer if the peer closed."""
    sock.settimeout(timeout)
    data, answers = b"", []
    while len(answers) < count:
        end = data.find(b"\r\n\r\n")
        if end >= 0:
            length = 0
            for line in data[:end].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(data) >= end + 4 + length:
                answers.append(data[: end + 4 + length])
                data = data[end + 4 + length :]
                continue
        chunk = sock.recv(65536)
        if not chunk:
            return [*answers, data]
        data += chunk
    return answers


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


def headers_of(answer: bytes) -> dict[bytes, bytes]:
    head = answer.partition(b"\r\n\r\n")[0]
    pairs = (line.partition(b":") for line in head.split(b"\r\n")[1:])
    return {name.strip().lower(): value.strip() for name, _, value in pairs}


def closed_by_peer(sock: socket.socket, timeout: float = 5) -> bool:
    """True when the server closes the connection within ``timeout`` (EOF or reset)."""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


def send_until_answered(sock: socket.socket, pieces: Iterable[bytes]) -> tuple[bytes, int]:
    """Send ``pieces`` until the server answers or stops reading; the answer and the bytes sent."""
    sent = 0
    for piece in pieces:
        try:
            sock.sendall(piece)
        except (BrokenPipeError, ConnectionResetError):
            break
        sent += len(piece)
        if select.select([sock], [], [], 0)[0]:
            break
    try:
        return read_answer(sock), sent
    except ConnectionResetError:
        return b"", sent


def dribble(data: bytes, every_s: float) -> Iterator[bytes]:
    for byte in data:
        time.sleep(every_s)
        yield bytes([byte])


def eventually(check: Callable[[], bool], within_s: float = 5) -> bool:
    deadline = time.monotonic() + within_s
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def rejections(server, reason: str) -> float:
    return server.metrics.http_rejections.labels(reason)._value.get()


def head_of(size: int) -> bytes:
    """A GET /health head of exactly ``size`` bytes (padded with one header)."""
    start, end = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: ", b"\r\n\r\n"
    return start + b"a" * (size - len(start) - len(end)) + end


# Request head size and header count.


def test_a_head_at_the_byte_limit_is_served_and_one_byte_more_gets_431(serve_service):
    url, server = serve_service(service, max_header_bytes=2048)
    with connect(url) as sock:
        sock.sendall(head_of(2048))
        assert status_of(read_answer(sock)) == 200
    with connect(url) as sock:
        sock.sendall(head_of(2049))
        answer = read_answer(sock)
        assert status_of(answer) == 431
        assert b"MCP_MAX_HEADER_BYTES" in answer
        assert headers_of(answer)[b"connection"] == b"close"
        assert closed_by_peer(sock)
    assert rejections(server, "header_size") == 1


def test_a_client_that_sent_more_than_the_limit_in_one_go_still_reads_its_431(serve_service):
    """The close waits for the rest of what was sent: closing on unread bytes resets the connection."""
    url, _ = serve_service(service, max_header_bytes=4096)
    for _ in range(20):
        with connect(url) as sock:
            sock.sendall(head_of(200_000))
            answer = read_answer(sock)
            assert status_of(answer) == 431, answer
            assert closed_by_peer(sock)


def test_a_header_line_that_never_ends_gets_431_and_the_connection_closes(serve_service, caplog):
    url, _ = serve_service(service, max_header_bytes=4096)
    with caplog.at_level("WARNING", logger="libmcp.http_edge"), connect(url) as sock:
        pieces = [b"GET /health HTTP/1.1\r\nX-Endless: ", *(b"a" * 1024 for _ in range(16384))]
        answer, sent = send_until_answered(sock, pieces)
        assert status_of(answer) == 431
        assert closed_by_peer(sock)
    assert sent < 16 * 1024 * 1024  # cut, not read to the end (loopback buffers hold a few megabytes)
    refusals = [record.fields for record in caplog.records if hasattr(record, "fields")]
    assert refusals == [{"event": "rejected", "reason": "header_size", "client": "127.0.0.1"}]
    assert "aaaa" not in caplog.text


def test_a_never_ending_header_does_not_grow_the_server(tmp_path):
    """In a real process: what the server holds does not grow with what the client sends."""
    with demo_process({"MCP_MAX_HEADER_BYTES": "32768"}) as (process, url):
        before = resident_kib(process.pid)
        for _ in range(20):
            with connect(url) as sock:
                pieces = [b"GET /health HTTP/1.1\r\nX-Endless: ", *(b"a" * 65536 for _ in range(256))]
                answer, sent = send_until_answered(sock, pieces)
                assert status_of(answer) == 431
                assert sent < 16 * 1024 * 1024
        assert httpx.get(f"{url}/health").status_code == 200
        grown_kib = resident_kib(process.pid) - before
    assert grown_kib < 16 * 1024, f"the server grew by {grown_kib} KiB"


def resident_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_the_header_count_limit_counts_lines(serve_service):
    url, server = serve_service(service, max_headers=20)
    headers = b"".join(b"X-%d: v\r\n" % n for n in range(19))
    with connect(url) as sock:  # Host plus 19: exactly the limit
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
        assert status_of(read_answer(sock)) == 200
    with connect(url) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Extra: v\r\n" + headers + b"\r\n")
        answer = read_answer(sock)
    assert status_of(answer) == 431
    assert b"MCP_MAX_HEADERS" in answer
    assert rejections(server, "header_count") == 1


def test_200000_header_lines_are_cut_at_the_limit(serve_service):
    url, server = serve_service(service)  # MCP_MAX_HEADERS defaults to 100
    lines = [
        b"".join(b"X-%d: v\r\n" % n for n in range(start, start + 1000)) for start in range(0, 200_000, 1000)
    ]
    with connect(url) as sock:
        answer, _ = send_until_answered(sock, [b"GET /health HTTP/1.1\r\n", *lines])
        assert closed_by_peer(sock)
    assert status_of(answer) == 431
    assert b"more than 100 header lines (MCP_MAX_HEADERS)" in answer
    assert rejections(server, "header_count") == 1


# Head and body timeouts.


def test_a_head_sent_one_byte_per_100ms_is_cut_at_the_header_timeout(serve_service):
    url, server = serve_service(service, header_timeout_s=1)
    request = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200 + b"\r\n\r\n"
    started = time.monotonic()
    with connect(url) as sock:
        answer, sent = send_until_answered(sock, dribble(request, 0.1))
        elapsed = time.monotonic() - started
        assert closed_by_peer(sock)
    assert status_of(answer) == 408
    assert b"MCP_HEADER_TIMEOUT_S" in answer
    assert 0.9 <= elapsed < 5
    assert sent < len(request)
    assert rejections(server, "header_timeout") == 1


def test_a_connection_that_sends_nothing_gets_408_at_the_header_timeout(serve_service):
    url, _ = serve_service(service, header_timeout_s=1)
    started = time.monotonic()
    with connect(url) as sock:
        answer = read_answer(sock)
        assert closed_by_peer(sock)
    assert status_of(answer) == 408
    assert 0.9 <= time.monotonic() - started < 5


def test_an_unfinished_body_gets_408_at_the_body_timeout(serve_service):
    url, server = serve_service(service, body_timeout_s=1)
    started = time.monotonic()
    with connect(url) as sock:
        sock.sendall(
            b"POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
        )
        answer = read_answer(sock)
        assert closed_by_peer(sock)
    assert status_of(answer) == 408
    assert b"MCP_BODY_TIMEOUT_S" in answer
    assert 0.9 <= time.monotonic() - started < 5
    assert rejections(server, "body_timeout") == 1


def post(path: str, body: bytes) -> bytes:
    return (
        b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
        % (
            path.encode(),
            len(body),
            body,
        )
    )


def test_a_pipelined_body_the_server_is_not_reading_yet_is_not_late(serve_service):
    """uvicorn stops reading a request's body while an earlier request on the connection runs and the
    body it holds is large: the body timeout waits with it."""
    url, server = serve_service(service, body_timeout_s=0.5)
    slow = post(
        "/rpc",
        b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"sleep","arguments":{"seconds":2}}}',
    )
    padded = post(
        "/rpc", b'{"jsonrpc":"2.0","id":2,"method":"ping","params":{"pad":"%s"}}' % (b"x" * 400_000)
    )
    with connect(url) as sock:
        sock.sendall(slow + padded)
        answers = read_answers(sock, 2)
    assert [status_of(answer) for answer in answers] == [200, 200]
    assert b'"id":2' in answers[1]
    assert rejections(server, "body_timeout") == 0


def test_a_slow_tool_call_is_not_a_timeout(serve_service):
    """The timeouts bound what the client sends, never how long the answer takes."""
    url, _ = serve_service(service, header_timeout_s=0.5, body_timeout_s=0.5)
    call = {"name": "sleep", "arguments": {"seconds": 1.5}}
    response = rpc(url, "tools/call", call, timeout=10)
    assert response.status_code == 200
    assert response.json()["result"]["structuredContent"] == {"slept": 1.5}


# Many slow clients, and the connection caps.


def test_slowloris_connections_do_not_starve_health(serve_service):
    url, server = serve_service(service, header_timeout_s=2, max_connections_per_client=50)
    held: list[socket.socket] = []
    try:
        for _ in range(320):
            sock = connect(url, source="127.0.0.2")
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: a")
            held.append(sock)
        for _ in range(3):
            assert httpx.get(f"{url}/health", timeout=5).status_code == 200
        answers = [status_of(read_answer(sock)) for sock in held]
    finally:
        for sock in held:
            sock.close()
    assert answers.count(503) == 270
    assert answers.count(408) == 50
    assert rejections(server, "client_connections") == 270
    assert httpx.get(f"{url}/health", timeout=5).status_code == 200


def test_one_connection_over_the_per_client_cap_gets_503_and_its_descriptor_is_freed(serve_service):
    url, server = serve_service(service, max_connections_per_client=3)
    admitted = [connect(url, source="127.0.0.2") for _ in range(3)]
    for sock in admitted:  # answered: the server holds its end of each
        sock.sendall(HEALTH)
        assert status_of(read_answer(sock)) == 200
    fds_before = len(os.listdir("/proc/self/fd"))
    refused = [connect(url, source="127.0.0.2") for _ in range(10)]
    try:
        for sock in refused:
            answer = read_answer(sock)
            assert status_of(answer) == 503
            assert headers_of(answer)[b"retry-after"] == b"1"
            assert b"MCP_MAX_CONNECTIONS_PER_CLIENT" in answer
            assert closed_by_peer(sock)
        # The ten client sockets are still open here; the server's ends of them are not.
        assert eventually(lambda: len(os.listdir("/proc/self/fd")) <= fds_before + 10)
        with connect(url, source="127.0.0.3") as other:  # another address is not held back
            other.sendall(HEALTH)
            assert status_of(read_answer(other)) == 200
        admitted.pop().close()
        time.sleep(0.2)
        with connect(url, source="127.0.0.2") as again:  # a freed place is a place again
            again.sendall(HEALTH)
            assert status_of(read_answer(again)) == 200
    finally:
        for sock in admitted + refused:
            sock.close()
    assert rejections(server, "client_connections") == 10


def test_one_connection_over_the_total_cap_gets_503(serve_service):
    url, server = serve_service(service, max_connections=4)
    held = [connect(url, source=f"127.0.0.{n}") for n in range(2, 6)]
    try:
        with connect(url, source="127.0.0.9") as sock:
            answer = read_answer(sock)
            assert status_of(answer) == 503
            assert b"MCP_MAX_CONNECTIONS" in answer
            assert headers_of(answer)[b"retry-after"] == b"1"
            assert closed_by_peer(sock)
    finally:
        for sock in held:
            sock.close()
    assert rejections(server, "connections") == 1


# Keep-alive and pipelining still work.


def test_pipelined_requests_are_all_answered_in_order(serve_service):
    url, _ = serve_service(service, max_header_bytes=1024)
    bodies = [b'{"jsonrpc":"2.0","id":%d,"method":"ping"}' % n for n in range(1, 4)]
    posts = [
        b"POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
        % (len(body), body)
        for body in bodies
    ]
    # Heads of almost the limit each: one read holding them all is measured head by head.
    big = head_of(1000)
    with connect(url) as sock:
        sock.sendall(posts[0] + big + posts[1] + big + posts[2] + HEALTH)
        answers = read_answers(sock, 6)
    assert [status_of(answer) for answer in answers] == [200] * 6
    assert [b'"id":%d' % n in answers[index] for n, index in ((1, 0), (2, 2), (3, 4))] == [True] * 3


def test_a_head_split_over_many_reads_is_measured_whole(serve_service):
    url, _ = serve_service(service, max_header_bytes=2048)
    for size, expected in ((2048, 200), (2049, 431)):
        request = head_of(size)
        with connect(url) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for start in range(0, len(request), 100):
                sock.sendall(request[start : start + 100])
                time.sleep(0.002)
            assert status_of(read_answer(sock)) == expected


@pytest.mark.parametrize("cut", [1, 2, 3, 4])
def test_a_blank_line_split_between_reads_still_ends_the_head(serve_service, cut):
    url, _ = serve_service(service, max_header_bytes=2048)
    for size, expected in ((2048, 200), (2049, 431)):
        request = head_of(size)
        with connect(url) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.sendall(request[:-cut])
            time.sleep(0.05)
            sock.sendall(request[-cut:])
            assert status_of(read_answer(sock)) == expected


def test_a_request_pipelined_after_a_chunked_body_is_answered(serve_service):
    url, _ = serve_service(service)
    body = b'{"jsonrpc":"2.0","id":1,"method":"ping"}'
    chunked = (
        b"POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + b"Transfer-Encoding: chunked\r\n\r\n"
        + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    )
    with connect(url) as sock:
        sock.sendall(chunked + HEALTH + chunked)
        answers = read_answers(sock, 3)
    assert [status_of(answer) for answer in answers] == [200, 200, 200]


def test_idle_keep_alive_connections_are_closed(serve_service):
    url, _ = serve_service(service, keepalive_timeout_s=1)
    with connect(url) as sock:
        sock.sendall(HEALTH)
        assert status_of(read_answer(sock)) == 200
        sock.sendall(HEALTH)  # still open between requests
        assert status_of(read_answer(sock)) == 200
        started = time.monotonic()
        sock.settimeout(5)
        assert sock.recv(1024) == b""  # closed without an answer: there was no request
    assert 0.9 <= time.monotonic() - started < 5


def test_a_kept_alive_connection_fed_empty_lines_is_still_closed(serve_service):
    """Every byte restarts uvicorn's keep-alive timer; empty lines past a few start the head's clock."""
    url, server = serve_service(service, keepalive_timeout_s=1, header_timeout_s=1)
    with connect(url) as sock:
        sock.sendall(HEALTH)
        assert status_of(read_answer(sock)) == 200
        started = time.monotonic()
        answer, _ = send_until_answered(sock, dribble(b"\r\n" * 100, 0.2))
        assert closed_by_peer(sock)
    assert status_of(answer) == 408
    assert time.monotonic() - started < 5
    assert rejections(server, "header_timeout") == 1


def test_an_upgrade_request_is_answered_as_plain_http_and_the_connection_goes_on(serve_service):
    url, _ = serve_service(service)
    upgrade = (
        b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n\r\n"
    )
    with connect(url) as sock:
        sock.sendall(upgrade)
        assert status_of(read_answer(sock)) == 200
        sock.sendall(HEALTH)
        assert status_of(read_answer(sock)) == 200


# Forwarded headers.


def tools_call(url: str, forwarded_for: str) -> httpx.Response:
    return rpc(
        url, "tools/call", {"name": "noop", "arguments": {}}, headers={"X-Forwarded-For": forwarded_for}
    )


def test_a_spoofed_forwarded_for_changes_neither_the_rate_limit_nor_the_logged_client(serve_service, caplog):
    url, _ = serve_service(service, rate_limit_per_minute=5)
    with caplog.at_level("INFO"):
        statuses = [tools_call(url, f"203.0.113.{n}").status_code for n in range(20)]
    assert statuses.count(200) == 5
    assert statuses.count(429) == 15
    logged = [record.fields for record in caplog.records if hasattr(record, "fields")]
    assert [fields["reason"] for fields in logged if fields["event"] == "rejected"] == ["rate_limit"] * 15
    assert {fields["client"] for fields in logged} == {"127.0.0.1"}


@pytest.mark.parametrize("proxies", [["127.0.0.1"], ["10.0.0.0/8", "127.0.0.0/8"]])
def test_forwarded_for_is_believed_from_a_trusted_proxy(serve_service, caplog, proxies):
    url, _ = serve_service(service, rate_limit_per_minute=5, trusted_proxies=proxies)
    with caplog.at_level("INFO", logger="libmcp.calls"):
        statuses = [tools_call(url, f"203.0.113.{n}").status_code for n in range(20)]
    assert statuses == [200] * 20  # twenty clients behind the proxy, one call each
    clients = {record.fields["client"] for record in caplog.records if hasattr(record, "fields")}
    assert clients == {f"203.0.113.{n}" for n in range(20)}


@pytest.mark.parametrize("entry", ["10.0.0.0/33", "proxy.internal", "*"])
def test_a_bad_trusted_proxy_stops_start_up_naming_the_setting(entry):
    with pytest.raises(SettingsError, match="MCP_TRUSTED_PROXIES"):
        build_server(
            service, environ={"MCP_TRUSTED_PROXIES": f"10.0.0.1,{entry}", "MCP_ENV_FILE": os.devnull}
        )


# A low open-file limit.


def test_the_connection_cap_keeps_descriptors_for_everything_else(monkeypatch, caplog):
    monkeypatch.setattr(http_edge.resource, "getrlimit", lambda _: (300, 4096))
    with caplog.at_level("WARNING", logger="libmcp.http_edge"):
        assert http_edge.connection_cap(1024) == 300 - http_edge.FD_RESERVE
        assert http_edge.connection_cap(200) == 200
    assert len(caplog.records) == 1
    assert "MCP_MAX_CONNECTIONS=1024" in caplog.text and "ulimit -n" in caplog.text
    monkeypatch.setattr(http_edge.resource, "getrlimit", lambda _: (http_edge.resource.RLIM_INFINITY,) * 2)
    assert http_edge.connection_cap(1024) == 1024


@contextlib.contextmanager
def demo_with_open_file_limit(limit: int, env: dict[str, str], output: list[str]) -> Iterator[str]:
    """The demo service as a process whose open-file limit is ``limit``; its output lands in ``output``."""
    port = free_port()

    def lower_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    process = subprocess.Popen(
        [sys.executable, "-m", "tests.libmcp.demo_service", str(port)],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), "MCP_ENV_FILE": os.devnull, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=lower_limit,
    )
    url = f"http://127.0.0.1:{port}"
    # Read what it logs as it comes: a full pipe would stop its event loop.
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout or ()), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the demo service did not start: {process.poll()}")
            time.sleep(0.05)
        yield url
        assert process.poll() is None
    finally:
        process.kill()
        process.wait()
        reader.join(timeout=10)
        output.append("".join(lines))


def test_with_a_low_open_file_limit_connections_are_capped_and_health_keeps_answering():
    env = {"MCP_HEADER_TIMEOUT_S": "3", "MCP_MAX_CONNECTIONS_PER_CLIENT": "100"}
    output: list[str] = []
    with demo_with_open_file_limit(300, env, output) as url:
        held: list[socket.socket] = []
        health: list[int] = []
        try:
            # 320 slow heads from four addresses: more than the 300 descriptors the process has.
            for n in range(320):
                sock = connect(url, source=f"127.0.0.{2 + n % 4}")
                sock.sendall(b"GET /health HTTP/1.1\r\nX-Slow: a")
                held.append(sock)
            for _ in range(3):
                answer = httpx.get(f"{url}/health", timeout=5)
                health.append(answer.status_code)
                if answer.status_code == 503:
                    assert answer.headers["retry-after"] == "1"
            answers = [status_of(read_answer(sock)) for sock in held]
        finally:
            for sock in held:
                sock.close()
        assert httpx.get(f"{url}/health", timeout=5).status_code == 200
    assert "MCP_MAX_CONNECTIONS=1024 does not fit the open-file limit" in output[0]
    # 300 descriptors, 64 kept for other files: 236 connections are served, the others refused.
    assert answers.count(408) + answers.count(503) == 320
    assert 230 <= answers.count(408) <= 300 - 64
    assert set(health) <= {200, 503}
    assert "Too many open files" not in output[0]


def test_health_answers_while_another_client_floods_headers(serve_service):
    url, _ = serve_service(service, max_header_bytes=4096)
    stop = threading.Event()

    def flood() -> None:
        while not stop.is_set():
            with connect(url, source="127.0.0.2") as sock:
                send_until_answered(sock, [b"GET /health HTTP/1.1\r\nX: ", *(b"a" * 8192 for _ in range(64))])

    flooder = threading.Thread(target=flood, daemon=True)
    flooder.start()
    try:
        statuses = [httpx.get(f"{url}/health", timeout=5).status_code for _ in range(20)]
    finally:
        stop.set()
        flooder.join(timeout=10)
    assert statuses == [200] * 20


# A client that does not read what it is sent.


def test_a_client_that_never_reads_its_answer_is_cut_at_the_send_timeout(serve_service):
    url, server = serve_service(service, send_timeout_s=1)
    call = post(
        "/rpc",
        b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":'
        b'{"text":"%s","times":10}}}' % (b"x" * 400_000),
    )  # an answer of about 8 MB: more than the loopback socket buffers hold
    parts = urlsplit(url)
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting, or it is ignored
        sock.connect((parts.hostname, parts.port))
        sock.sendall(call)
        # Nothing is read: the server's transport fills, asks to pause writing, and is aborted.
        assert eventually(lambda: rejections(server, "send_timeout") == 1, within_s=10)
        assert httpx.get(f"{url}/health", timeout=5).status_code == 200
        received = 0
        sock.settimeout(5)
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(1 << 20):
                received += len(chunk)
    assert received < 8_000_000  # the rest of the answer was dropped, not delivered late


def test_a_slow_reader_that_keeps_reading_is_not_cut(serve_service):
    url, server = serve_service(service, send_timeout_s=1)
    call = post(
        "/rpc",
        b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":'
        b'{"text":"%s","times":10}}}' % (b"x" * 400_000),
    )
    parts = urlsplit(url)
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect((parts.hostname, parts.port))
        sock.sendall(call)
        time.sleep(0.5)  # paused, but read again within the timeout
        (answer,) = read_answers(sock, 1, timeout=30)
    assert status_of(answer) == 200 and len(answer) > 8_000_000
    assert rejections(server, "send_timeout") == 0


# Request bodies held at once, all clients together.


def unfinished_post(url: str, declared: int, sent: bytes) -> socket.socket:
    sock = connect(url)
    sock.sendall(
        b"POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
        % (declared, sent)
    )
    return sock


def test_bodies_past_the_in_flight_budget_get_503_until_earlier_ones_are_answered(serve_service):
    url, server = serve_service(service, max_body_bytes=100_000, max_body_bytes_in_flight=250_000)
    ping = b'{"jsonrpc":"2.0","id":1,"method":"ping"}'
    padded = ping[:-1] + b',"params":{"pad":"' + b"x" * (100_000 - len(ping) - 20)
    tail = b'"}}'
    padded += b" " * (100_000 - len(padded) - len(tail))

    for _ in range(2):  # the second round proves the first round's bytes were given back
        first, second = (unfinished_post(url, 100_000, padded[:1000]) for _ in range(2))
        with first, second:
            time.sleep(0.3)  # both heads read and their declared bodies counted
            with unfinished_post(url, 100_000, b"") as third:
                refused = read_answer(third)
            small = httpx.post(f"{url}/rpc", content=ping, headers={"Content-Type": "application/json"})
            first.sendall(padded[1000:] + tail)
            answered = read_answer(first)
        assert status_of(refused) == 503
        assert headers_of(refused)[b"retry-after"] == b"1"
        assert b"MCP_MAX_BODY_BYTES_IN_FLIGHT" in refused
        assert small.status_code == 200  # 200,000 held, a small body still fits
        assert status_of(answered) == 200
    assert rejections(server, "body_bytes_in_flight") == 2
