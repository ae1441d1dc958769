"""The attack bench's code paths, run for real on a tiny budget so the bench cannot rot unnoticed.

It tests the bench itself (its phases, its classification, its report and the merging of sections in
``python -m bench``), so it lives in bench/ beside what it tests: tests/ never imports bench.

Nothing here asserts speed: the figures depend on the machine. What is pinned down is that each phase
measures something, that the attacker's answers are classified, that the report renders them, and that
a run of one section keeps the stored results of the others.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from bench import __main__ as bench_main
from bench import attack_bench, report
from bench.attack_bench import Reply, refused, tool_kind


def test_two_attack_classes_measure_both_phases_and_classify_what_the_attacker_got() -> None:
    results = attack_bench.run(1.0, ("header_flood", "spoofed_forwarded_for"))

    assert [result.name for result in results] == ["header_flood", "spoofed_forwarded_for"]
    for result in results:
        assert result.error is None
        for phase in (result.baseline, result.under_attack):
            assert phase["health"]["requests"] > 0 and phase["call"]["requests"] > 0
        assert result.baseline["call"]["failed"] == 0, result.baseline["call"]["failures"]
        assert result.idle_rss_mb > 0 and result.peak_rss_mb > 0 and result.rss_after_mb > 0
        assert set(result.as_dict()["targets"]) == {"peak_rss", "rss_after", "health_p99", "call_p99"}
    flood, spoof = (result.outcome["got"] for result in results)
    assert {kind.split(": ")[0] for kind in flood} == {"endless header line", "200,000 header lines"}
    assert set(spoof) <= {"HTTP 200", "HTTP 429"} and sum(spoof.values()) > 0
    assert results[1].settings["MCP_RATE_LIMIT_PER_MINUTE"] == "3000"

    page = report.render({"attack": [result.as_dict() for result in results]}, [])
    assert "## Under attack" in page
    assert "### header_flood (filesystem)" in page and "### spoofed_forwarded_for (filesystem)" in page
    assert "issue 16: under every attack class" in page


def test_a_tool_answer_is_classified_by_what_it_says() -> None:
    def answer(result: dict[str, Any]) -> Reply:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, **result}, separators=(",", ":")).encode()
        return Reply(200, length=len(body), head=body, tail=body, complete=True)

    busy = {"result": {"content": [{"type": "text", "text": "Busy: MCP_CLIENT_SHARE"}], "isError": True}}
    truncated = {"result": {"content": [], "structuredContent": {"truncated": True}, "isError": False}}
    internal = {"error": {"code": -32603, "message": "Internal error"}}

    assert tool_kind(answer(busy)) == "isError: Busy: MCP_CLIENT_SHARE"
    assert tool_kind(answer(truncated)) == "result, truncated"
    assert tool_kind(answer(internal)) == "JSON-RPC error -32603: Internal error"
    assert Reply(None, "closed without an answer").kind() == "closed without an answer"
    assert Reply(431).kind() == "HTTP 431"
    assert refused("endless header line: HTTP 431") and refused("isError: Busy: MCP_CLIENT_SHARE")
    assert not refused("POST /messages: HTTP 202") and not refused("JSON-RPC error -32603: Internal error")


def test_a_run_of_one_section_keeps_the_stored_results_of_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored = {
        "meta": {"date": "2026-01-01 00:00 UTC", "load": {"fetch": [1.0, 1.0, 1.0]}, "failures": []},
        "fetch": "| page | ours |\n|---|---|\n| 2 MB page | 12.5 ms |",
    }
    results_file = tmp_path / "results.json"
    results_file.write_text(json.dumps(stored))
    written = tmp_path / "PERFORMANCE.md"
    original_write = report.write
    monkeypatch.setattr(report, "RESULTS", results_file)
    monkeypatch.setattr(report, "PLOTS", tmp_path)
    monkeypatch.setattr(report, "write", lambda results: original_write(results, written, tmp_path))
    monkeypatch.setitem(bench_main.RUNNERS, "attack", lambda budget: [])
    monkeypatch.setattr(sys, "argv", ["bench", "--only", "attack"])

    assert bench_main.main() == 0

    kept = json.loads(results_file.read_text())
    assert kept["fetch"] == stored["fetch"] and kept["attack"] == []
    assert kept["meta"]["dates"]["fetch"] == "2026-01-01 00:00 UTC"
    assert kept["meta"]["dates"]["attack"] != "2026-01-01 00:00 UTC"
    page = written.read_text()
    assert "| 2 MB page | 12.5 ms |" in page
    assert "Measured on 2026-01-01 00:00 UTC, in an earlier run" in page
