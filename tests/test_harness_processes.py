"""The one helper that starts child servers for tests and bench (harness/processes.py), on real processes."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import httpx
import pytest

from harness.processes import ServiceProcess, free_port


def http_server(port: int, log_path: Path | None = None) -> ServiceProcess:
    """``python -m http.server``: answers 404 on /health and logs every request to stderr."""
    command = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    return ServiceProcess("http.server", command=command, port=port, ready_statuses=None, log_path=log_path)


def test_a_child_that_dies_before_answering_is_reported_with_what_it_printed() -> None:
    dying = ServiceProcess(
        "dying", command=[sys.executable, "-c", "print('bad setting X'); raise SystemExit(3)"]
    )

    with pytest.raises(RuntimeError) as failure:
        dying.start(timeout=30)

    assert "dying exited with 3" in str(failure.value)
    assert "bad setting X" in str(failure.value)


def test_any_answer_is_ready_when_no_status_is_required_and_stop_sends_sigterm() -> None:
    port = free_port()
    with http_server(port) as server:
        assert httpx.get(f"{server.url}/health", timeout=5).status_code == 404
        stopped = server.stop()

    assert stopped is not None
    code, output = stopped
    assert code == -signal.SIGTERM
    assert '"GET /health HTTP/1.1" 404' in output
    assert server.stop() is None


def test_a_restarted_child_appends_to_its_log_file(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    server = http_server(free_port(), log_path=log)

    for _ in range(2):
        server.start(timeout=30)
        server.stop()

    assert log.read_text().count('"GET /health HTTP/1.1" 404') >= 2
