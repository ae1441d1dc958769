"""The chart's NetworkPolicies, proved with network-config-analyzer (nca) over the rendered chart plus a
topology of the pods the chart does not create (chart_fixtures/topology.yaml).

nca computes what the policies allow with the Kubernetes NetworkPolicy semantics; no CNI or cluster runs
here, so this proves the policies say the right thing, not that a given CNI enforces them (the chart
README lists which do).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.helm_support import FIXTURES, NAMESPACE, RELEASE, render, render_variant, run_nca

ANALYSED_VARIANT = "all-services"
EXPECTED_MAP = FIXTURES / "expected_connectivity.txt"


def _topology_pods() -> list[dict[str, Any]]:
    items = yaml.safe_load((FIXTURES / "topology.yaml").read_text(encoding="utf-8"))["items"]
    return [item for item in items if item["kind"] == "Pod"]


@pytest.fixture(scope="module")
def analysis_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with topology.yaml and rendered.yaml (the all-services variant), as nca reads them."""
    directory = tmp_path_factory.mktemp("nca")
    shutil.copy(FIXTURES / "topology.yaml", directory / "topology.yaml")
    (directory / "rendered.yaml").write_text(render_variant(ANALYSED_VARIANT).yaml_text(), encoding="utf-8")
    return directory


def _endpoint_count(output: str, config: str = "global") -> int:
    match = re.search(rf"^{re.escape(config)}: cluster has (\d+) unique endpoints", output, re.MULTILINE)
    assert match, output[-2000:]
    return int(match.group(1))


def _expected_endpoints() -> int:
    rendering = render_variant(ANALYSED_VARIANT)
    workloads = len(rendering.of_kind("Deployment")) + len(rendering.of_kind("Pod"))
    return len(_topology_pods()) + workloads


@pytest.fixture(scope="module")
def connectivity(analysis_dir: Path) -> tuple[set[str], str]:
    """nca's connectivity map of the analysed variant: (one line per allowed path, the whole output)."""
    arguments = ["--connectivity", "-r", "topology.yaml", "-r", "rendered.yaml", "-o", "txt_no_fw_rules"]
    result = run_nca(arguments, cwd=analysis_dir)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = {line for line in result.stdout.splitlines() if " => " in line}
    return lines, result.stdout


def test_the_analysis_sees_every_chart_workload_and_every_topology_pod(
    connectivity: tuple[set[str], str],
) -> None:
    """Guards against nca's vacuous pass: workloads missing from the resource list would just be absent."""
    _, output = connectivity
    assert _endpoint_count(output) == _expected_endpoints() == 18


def test_connectivity_map_matches_the_reviewed_map(connectivity: tuple[set[str], str]) -> None:
    lines, _ = connectivity
    expected = {
        line
        for line in EXPECTED_MAP.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert sorted(lines - expected) == [], "connections the reviewed map does not have"
    assert sorted(expected - lines) == [], "reviewed connections that are gone"


def _chart_lines(lines: set[str]) -> set[str]:
    """Lines whose source or destination is a chart workload."""
    return {line for line in lines if f"{NAMESPACE}/{RELEASE}-" in line}


def test_every_connection_of_the_chart_is_one_of_the_issue_rules(connectivity: tuple[set[str], str]) -> None:
    """Read as the issue: each allowed path touching a chart pod is named here, nothing else exists."""
    lines, _ = connectivity
    ports = {"postgres": 8001, "fetch": 8002, "filesystem": 8003, "github": 8004, "monitoring": 8005}
    expected: set[str] = set()
    for name, port in ports.items():
        target = f"{NAMESPACE}/{RELEASE}-{name}[Deployment]"
        for client in (
            "mcp/litellm[Pod]",
            "webui/open-webui[Pod]",
            f"{NAMESPACE}/{RELEASE}-test-health[Pod]",
        ):
            expected.add(f"{client} => {target} : {{protocols:TCP,dst_ports:{port}}}")
        expected.add(f"monitoring/prometheus[Pod] => {target} : {{protocols:TCP,dst_ports:{port + 1000}}}")
    dns = "kube-system/coredns[Pod] : {protocols:TCP, UDP,dst_ports:53}"
    for name in ("postgres", "fetch", "github", "monitoring", "test-health"):
        kind = "Pod" if name == "test-health" else "Deployment"
        expected.add(f"{NAMESPACE}/{RELEASE}-{name}[{kind}] => {dns}")
    internet = [
        "0.0.0.0-9.255.255.255",
        "11.0.0.0-100.63.255.255",
        "100.128.0.0-126.255.255.255",
        "128.0.0.0-169.253.255.255",
        "169.255.0.0-172.15.255.255",
        "172.32.0.0-192.167.255.255",
        "192.169.0.0-255.255.255.255",
    ]
    for name in ("fetch", "github"):
        for block in internet:
            expected.add(
                f"{NAMESPACE}/{RELEASE}-{name}[Deployment] => {block} : {{protocols:TCP,dst_ports:80,443}}"
            )
    postgres = f"{NAMESPACE}/{RELEASE}-postgres[Deployment]"
    expected |= {
        f"{postgres} => mcp/postgresql[Pod] : {{protocols:TCP,dst_ports:5432}}",
        f"{postgres} => 192.0.2.10 : {{protocols:TCP,dst_ports:5432}}",
    }
    monitoring = f"{NAMESPACE}/{RELEASE}-monitoring[Deployment]"
    expected |= {
        f"{monitoring} => 172.18.0.2 : {{protocols:TCP,dst_ports:443,6443}}",
        f"{monitoring} => 10.96.0.1 : {{protocols:TCP,dst_ports:443,6443}}",
        f"{monitoring} => monitoring/loki[Pod] : {{protocols:TCP,dst_ports:3100}}",
        f"{monitoring} => monitoring/prometheus[Pod] : {{protocols:TCP,dst_ports:9090}}",
    }
    assert sorted(_chart_lines(lines) - expected) == []
    assert sorted(expected - _chart_lines(lines)) == []
    assert not any(f"{RELEASE}-filesystem[Deployment] =>" in line for line in lines), "filesystem has egress"


def _split_queries(kind: str, directory: Path) -> list[str]:
    names = []
    for policy in yaml.safe_load((FIXTURES / f"{kind}.yaml").read_text(encoding="utf-8"))["items"]:
        name = policy["metadata"]["name"]
        (directory / f"{name}.yaml").write_text(yaml.safe_dump(policy), encoding="utf-8")
        names.append(name)
    return names


def _run_scheme(directory: Path, rendered: str) -> tuple[Any, list[str], list[str]]:
    """All permits/forbids queries in one nca process. Each rule runs twice: as itself (0 violations
    expected) and reversed as a canary (1 expected), which proves the rule captures real connections
    instead of passing vacuously."""
    permits = _split_queries("permits", directory)
    forbids = _split_queries("forbids", directory)
    configs = [{"name": "chart", "resourceList": ["topology.yaml", rendered]}]
    configs += [{"name": name, "networkPolicyList": [f"{name}.yaml"]} for name in permits + forbids]
    queries = []
    for name in permits:
        queries.append({"name": f"must-allow:{name}", "permits": ["chart", name], "expected": 0})
        queries.append({"name": f"canary:{name}", "forbids": ["chart", name], "expected": 1})
    for name in forbids:
        queries.append({"name": f"must-deny:{name}", "forbids": ["chart", name], "expected": 0})
        queries.append({"name": f"canary:{name}", "permits": ["chart", name], "expected": 1})
    scheme = {"resourceList": ["topology.yaml", rendered], "networkConfigList": configs, "queries": queries}
    (directory / "scheme.yaml").write_text(yaml.safe_dump(scheme, sort_keys=False), encoding="utf-8")
    return run_nca(["--scheme", "scheme.yaml"], cwd=directory), permits, forbids


@pytest.fixture(scope="module")
def scheme_run(analysis_dir: Path) -> tuple[Any, list[str], list[str]]:
    return _run_scheme(analysis_dir, "rendered.yaml")


def test_every_must_allow_and_must_deny_query_holds(scheme_run: tuple[Any, list[str], list[str]]) -> None:
    result, permits, forbids = scheme_run
    output = result.stdout + result.stderr
    ran = set(re.findall(r"^Running query (\S+)", result.stdout, re.MULTILINE))
    assert ran == {f"must-allow:{name}" for name in permits} | {f"must-deny:{name}" for name in forbids} | {
        f"canary:{name}" for name in permits + forbids
    }
    unexpected = re.findall(r"Unexpected result for query (\S+)", output)
    assert unexpected == []
    assert result.returncode == 0, output[-3000:]
    assert _endpoint_count(result.stdout, "chart") == _expected_endpoints()
    assert len(permits) >= 10 and len(forbids) >= 20


def test_a_must_deny_query_fails_on_a_chart_that_lets_everyone_in(tmp_path: Path) -> None:
    """The clients rule widened to every pod of the release namespace: the unrelated pod gets in, and the
    must-deny query says so (the queries can fail, they do not pass by construction)."""
    shutil.copy(FIXTURES / "topology.yaml", tmp_path / "topology.yaml")
    values = yaml.safe_load((FIXTURES / "values" / f"{ANALYSED_VARIANT}.yaml").read_text(encoding="utf-8"))
    values["networkPolicy"]["clients"] = {"podSelectors": [{}], "namespaceSelector": {"matchLabels": {}}}
    (tmp_path / "rendered.yaml").write_text(render(values).yaml_text(), encoding="utf-8")
    _split_queries("forbids", tmp_path)
    query = "deny-unrelated-pod-in-release-namespace.yaml"
    arguments = [
        "--forbids",
        query,
        "--base_np_list",
        "rendered.yaml",
        "-r",
        "topology.yaml",
        "-r",
        "rendered.yaml",
    ]
    result = run_nca(arguments, cwd=tmp_path)
    assert result.returncode == 1, result.stdout[-2000:]
    assert "mcp/unrelated" in result.stdout
    assert _endpoint_count(result.stdout) == _expected_endpoints()


def test_without_network_policies_nothing_is_rendered() -> None:
    rendering = render_variant("no-networkpolicy")
    assert rendering.of_kind("NetworkPolicy") == []
