"""The alerting rules (charts/mcp-sse/files/alerts.yaml), checked and unit-tested by Prometheus' promtool.

The unit tests (tests/deploy/prometheus/alerts_test.yaml) give every alert a series that fires and near
misses that must not. Each near miss is proved to matter: weakening the rule it guards (a dropped
selector, a lower threshold, a shorter ``for``) makes promtool's test fail.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.helm_support import CHART_DIR

RULES = CHART_DIR / "files" / "alerts.yaml"
RULE_TESTS = Path(__file__).resolve().parent / "prometheus" / "alerts_test.yaml"
ALERTS = (
    "McpServiceDown",
    "McpToolErrorRatioHigh",
    "McpToolLatencyHigh",
    "McpRateLimited",
    "McpBackendDown",
    "McpSseSessionsNearCap",
)


def promtool(*arguments: str | Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail("promtool is missing: apt-get install prometheus (scripts/apt/monitoring.txt)")
    return subprocess.run(
        [binary, *map(str, arguments)], capture_output=True, text=True, timeout=60, check=False
    )


def rules_by_alert(groups: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {rule["alert"]: rule for group in groups["groups"] for rule in group["rules"] if "alert" in rule}


def load_rules() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return data


def test_promtool_accepts_the_rules_file() -> None:
    checked = promtool("check", "rules", RULES)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in checked.stdout


def test_the_rules_are_exactly_the_six_alerts_each_with_a_severity_and_a_summary() -> None:
    rules = rules_by_alert(load_rules())
    assert tuple(rules) == ALERTS
    for name, rule in rules.items():
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name


def test_the_unit_tests_pass() -> None:
    tested = promtool("test", "rules", RULE_TESTS)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_every_alert_has_a_unit_test_where_it_fires_and_one_where_it_stays_quiet() -> None:
    tests = yaml.safe_load(RULE_TESTS.read_text(encoding="utf-8"))["tests"]
    cases = [case for test in tests for case in test["alert_rule_test"]]
    for name in ALERTS:
        expectations = [case["exp_alerts"] for case in cases if case["alertname"] == name]
        assert any(expectations), f"{name} never fires in the unit tests"
        assert [] in expectations, f"{name} is never expected to stay quiet"


# (alert, what is changed, from, to): each change lets a near-miss series of the unit tests fire.
WEAKENED = [
    ("McpServiceDown", "expr", 'up{job=~".*mcp.*"}', "up"),
    ("McpToolErrorRatioHigh", "expr", 'outcome!~"ok|cancelled"', 'outcome!="ok"'),
    ("McpToolErrorRatioHigh", "expr", "> 1/60", ">= 0"),
    ("McpToolErrorRatioHigh", "expr", ") > 0.1", ") > 0.01"),
    ("McpToolLatencyHigh", "expr", "> 10", "> 0.5"),
    ("McpRateLimited", "expr", '{reason="rate_limit"}', ""),
    ("McpRateLimited", "expr", "> 0.1", "> 0.01"),
    ("McpBackendDown", "for", "5m", "2m"),
    ("McpSseSessionsNearCap", "expr", "> 0.8", "> 0.7"),
]


@pytest.mark.parametrize(
    ("alert", "field", "before", "after"),
    WEAKENED,
    ids=[f"{alert}-{before}" for alert, _, before, _ in WEAKENED],
)
def test_a_weakened_rule_fails_the_unit_tests(
    tmp_path: Path, alert: str, field: str, before: str, after: str
) -> None:
    groups = load_rules()
    rule = rules_by_alert(groups)[alert]
    assert before in rule[field]
    rule[field] = rule[field].replace(before, after)
    weakened = tmp_path / "alerts.yaml"
    weakened.write_text(yaml.safe_dump(groups, sort_keys=False), encoding="utf-8")
    assert promtool("check", "rules", weakened).returncode == 0
    unit_tests = yaml.safe_load(RULE_TESTS.read_text(encoding="utf-8"))
    unit_tests["rule_files"] = [str(weakened)]
    copy = tmp_path / "alerts_test.yaml"
    copy.write_text(yaml.safe_dump(unit_tests, sort_keys=False), encoding="utf-8")

    tested = promtool("test", "rules", copy)

    assert tested.returncode != 0, tested.stdout
    assert f"alertname: {alert}" in tested.stdout + tested.stderr
