"""The Helm chart, proved without a cluster: rendered through the Helm v4 SDK, linted, validated against the
Kubernetes 1.30 and 1.33 schemas, checked for Pod Security "restricted" and scanned by checkov.

Rendering uses the real Helm template engine (helm-python-sdk); there is no API server here, so what is
proved is what `helm template` produces, not how a cluster runs it (docs/KUBERNETES.md covers kind/k3s).
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.deploy.helm_support import (
    CHART_DIR,
    HELM_PYTHON,
    HELM_STAND_IN,
    KUBE_VERSIONS,
    NAMESPACE,
    RELEASE,
    ROOT,
    SERVICE_NAMES,
    RenderError,
    chart_values,
    lint,
    load_variant,
    package_version,
    registry,
    render,
    render_variant,
    require_tool,
    run_checkov,
    validate_documents,
    values_from_set_flags,
    variant_names,
)

VARIANTS = variant_names()
DEFAULT_ENABLED = ("fetch", "filesystem", "github", "postgres")


def fullname(service: str) -> str:
    return f"{RELEASE}-{service}"


def container(rendering: Any, service: str) -> dict[str, Any]:
    (only,) = rendering.get("Deployment", fullname(service))["spec"]["template"]["spec"]["containers"]
    return only


def env_of(container_spec: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container_spec.get("env", [])}


# --- Chart metadata and values against the registry ------------------------------------------------------


def test_chart_metadata_uses_apiversion_v2_and_the_package_version_as_appversion() -> None:
    chart = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text(encoding="utf-8"))
    assert chart["apiVersion"] == "v2"
    assert chart["name"] == "mcp-sse"
    assert chart["appVersion"] == package_version()
    assert re.fullmatch(r"\d+\.\d+\.\d+", chart["version"])


def test_default_values_agree_with_the_service_registry() -> None:
    values = chart_values()["services"]
    services = registry()["services"]
    assert set(values) == set(services)
    for name, entry in services.items():
        block = values[name]
        assert block["port"] == entry["port"], name
        assert block["metricsPort"] == entry["metrics_port"], name
        assert block["image"]["repository"] == entry["image"], name
        assert block["image"]["tag"] == "", f"{name}: the tag must default to the appVersion"


def test_env_values_name_only_registry_variables_with_the_right_secrecy() -> None:
    data = registry()
    common = data["common_env"]
    values = chart_values()
    # The chart sets these from the ports and from rbac.namespaces; nobody else may.
    chart_managed = {"MCP_HOST", "MCP_PORT", "MCP_METRICS_PORT", "MONITORING_NAMESPACES"}
    for key in values["common"]["env"]:
        assert key in common and not common[key]["secret"] and key not in chart_managed, key
    for name, entry in data["services"].items():
        block = values["services"][name]
        for key in block["env"]:
            assert key in entry["env"] and not entry["env"][key]["secret"] and key not in chart_managed, (
                name,
                key,
            )
        for key in block["secretEnv"]:
            assert entry["env"][key]["secret"], (name, key)


def test_env_defaults_equal_the_registry_defaults_except_the_documented_pod_paths() -> None:
    data = registry()
    values = chart_values()
    overrides = {("filesystem", "ALLOWED_PATHS"): "/workspace:ro,/shared:rw"}
    for key, value in values["common"]["env"].items():
        assert value == data["common_env"][key]["default"], key
    for name, entry in data["services"].items():
        for key, value in values["services"][name]["env"].items():
            expected = overrides.get((name, key), entry["env"][key]["default"])
            assert value == expected, (name, key)


def _value_lines() -> list[tuple[int, int, str, str]]:
    """(line number, indent, key, the stripped line) of every `key:` line of values.yaml."""
    rows = []
    for number, line in enumerate((CHART_DIR / "values.yaml").read_text(encoding="utf-8").splitlines()):
        match = re.match(r"^( *)(?:- )?([A-Za-z0-9_.\-/]+):", line)
        if match and not line.lstrip().startswith("#"):
            rows.append((number, len(match.group(1)), match.group(2), line.strip()))
    return rows


def test_every_value_in_values_yaml_is_commented() -> None:
    """A key is documented by a comment right above it or above a parent block (not a top-level key, not a
    services.<name> header, which would document everything below them)."""
    lines = (CHART_DIR / "values.yaml").read_text(encoding="utf-8").splitlines()
    rows = _value_lines()
    commented = {number: number > 0 and lines[number - 1].lstrip().startswith("#") for number, *_ in rows}
    undocumented = []
    stack: list[tuple[int, str, int]] = []  # (indent, key, line number) of the open parent blocks
    for number, indent, key, _ in rows:
        while stack and stack[-1][0] >= indent:
            stack.pop()
        skip = 2 if stack and stack[0][1] == "services" else 1
        is_block_header = lines[number].rstrip().endswith(":")
        parent_commented = any(commented[line] for _, _, line in stack[skip:])
        if not is_block_header and not commented[number] and not parent_commented:
            undocumented.append(f"line {number + 1}: {key}")
        stack.append((indent, key, number))
    assert undocumented == []


def _schema_paths(schema: dict[str, Any], node: dict[str, Any], prefix: str) -> set[str]:
    if "$ref" in node:
        node = schema["$defs"][node["$ref"].rsplit("/", 1)[1]]
    paths = {prefix} if prefix else set()
    for key, child in node.get("properties", {}).items():
        paths |= _schema_paths(schema, child, f"{prefix}.{key}" if prefix else key)
    return paths


def _value_paths(value: Any, prefix: str, open_maps: set[str]) -> set[str]:
    paths = {prefix} if prefix else set()
    if isinstance(value, dict) and prefix.rsplit(".", 1)[-1] not in open_maps:
        for key, child in value.items():
            paths |= _value_paths(child, f"{prefix}.{key}" if prefix else key, open_maps)
    return paths


def test_schema_describes_every_default_value_and_closes_every_block() -> None:
    schema = json.loads((CHART_DIR / "values.schema.json").read_text(encoding="utf-8"))
    # Maps whose keys are free (variable names, labels, Kubernetes objects).
    open_maps = {
        "env",
        "secretEnv",
        "matchLabels",
        "annotations",
        "labels",
        "nodeSelector",
        "affinity",
        "podAnnotations",
        "podLabels",
        "requests",
        "limits",
        "podSecurityContext",
        "containerSecurityContext",
    }
    missing = _value_paths(chart_values(), "", open_maps) - _schema_paths(schema, schema, "")
    assert missing == set()
    for name in SERVICE_NAMES:
        block = schema["properties"]["services"]["properties"][name]
        if "$ref" in block:  # the services with nothing of their own share one definition
            block = schema["$defs"][block["$ref"].rsplit("/", 1)[1]]
        assert block["additionalProperties"] is False
        assert {"port", "metricsPort", "image", "replicas", "env"} <= set(block["required"])


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"services": {"fetch": {"replica": 2}}}, "replica"),
        ({"services": {"fetch": {"port": "8002"}}}, "port"),
        ({"services": {"fetch": {"image": {"tag": 1}}}}, "tag"),
        ({"services": {"fetch": {"image": {"registry": "x"}}}}, "registry"),
        ({"services": {"fetch": {"sessionAffinity": "sticky"}}}, "sessionAffinity"),
        ({"services": {"postgres": {"storage": {}}}}, "storage"),
        ({"services": {"redis": {"enabled": True}}}, "redis"),
        ({"services": {"github": {"networkPolicy": {"egressTo": ["everywhere"]}}}}, "egressTo"),
        ({"networkPolicy": {"internet": {"privateCIDRs": ["not-a-cidr"]}}}, "privateCIDRs"),
        ({"services": {"fetch": {"env": {"lower_case": "x"}}}}, "lower_case"),
        ({"metrics": {"prometheusRule": {"enabled": "yes"}}}, "enabled"),
        ({"metrics": {"grafanaDashboard": {"labels": {"grafana_dashboard": 1}}}}, "grafana_dashboard"),
        ({"metrics": {"grafanaDashboard": {"folder": "MCP"}}}, "folder"),
    ],
    ids=[
        "unknown-key",
        "port-as-string",
        "tag-as-number",
        "unknown-image-key",
        "bad-affinity",
        "storage-outside-filesystem",
        "unknown-service",
        "unknown-egress-target",
        "bad-cidr",
        "bad-env-name",
        "prometheus-rule-enabled-as-string",
        "dashboard-label-as-number",
        "unknown-dashboard-key",
    ],
)
def test_schema_rejects_wrong_types_and_unknown_keys(values: dict[str, Any], complaint: str) -> None:
    with pytest.raises(RenderError) as caught:
        render(values)
    assert complaint in str(caught.value)


def test_monitoring_with_network_policies_requires_the_api_server_address() -> None:
    with pytest.raises(RenderError, match=r"networkPolicy\.kubeApi\.cidrs is empty"):
        render({"services": {"monitoring": {"enabled": True}}})


# --- Lint, render, schemas ----------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_helm_lint_strict_passes(variant: str) -> None:
    report = lint_variant(variant)
    assert report["errors"] == []
    problems = [message for message in report["messages"] if message["severity"] >= 2]
    assert problems == []


def test_helm_lint_strict_passes_for_kubernetes_1_33() -> None:
    report = lint({}, kube_version="v1.33.0")
    assert report["errors"] == [] and [m for m in report["messages"] if m["severity"] >= 2] == []


def lint_variant(variant: str) -> dict[str, Any]:
    return lint(load_variant(variant))


def test_default_values_render_exactly_the_expected_objects() -> None:
    rendering = render_variant("default")
    kinds: dict[str, set[str]] = {}
    for document in rendering.documents:
        kinds.setdefault(document["kind"], set()).add(document["metadata"]["name"])
    per_service = {fullname(name) for name in DEFAULT_ENABLED}
    assert kinds == {
        "ConfigMap": per_service,
        "Deployment": per_service,
        "Service": per_service,
        "ServiceAccount": per_service,
        "NetworkPolicy": per_service | {f"{RELEASE}-default-deny", f"{RELEASE}-health-test"},
        "Pod": {f"{RELEASE}-test-health"},
    }
    assert all(document["metadata"]["namespace"] == NAMESPACE for document in rendering.documents)


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_rendered_object_is_valid_for_kubernetes_1_30_and_1_33(variant: str) -> None:
    rendering = render_variant(variant)
    # ServiceMonitor and PrometheusRule are CRDs kubernetes-validate has no schema for: checked against
    # their own schemas below.
    built_in = [
        document
        for document in rendering.documents
        if document["kind"] not in ("ServiceMonitor", "PrometheusRule")
    ]
    results = validate_documents(built_in, KUBE_VERSIONS)
    assert len(results) == len(built_in) * len(KUBE_VERSIONS) > 0
    failures = [result for result in results if result["status"] != "valid"]
    assert failures == []


def test_schema_validation_rejects_a_broken_object_and_an_unknown_api_version() -> None:
    deployment = copy.deepcopy(render_variant("default").get("Deployment", fullname("fetch")))
    deployment["spec"]["replicas"] = "three"
    typo = copy.deepcopy(render_variant("default").get("Service", fullname("fetch")))
    typo["spec"]["sessionAfinity"] = "None"
    beta = {
        "apiVersion": "policy/v1beta1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "old"},
        "spec": {},
    }
    results = validate_documents([deployment, typo, beta], ["1.30.0"])
    assert [result["status"] for result in results] == ["invalid", "invalid", "no-schema"]


# The Prometheus Operator CRD is not in kubernetes-validate's bundle: the fields the chart writes are
# checked against this excerpt of monitoring.coreos.com/v1 ServiceMonitor instead.
SERVICE_MONITOR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": {"type": "object", "required": ["name", "namespace"]},
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["selector", "endpoints"],
            "properties": {
                "selector": {"type": "object", "properties": {"matchLabels": {"type": "object"}}},
                "namespaceSelector": {"type": "object", "properties": {"matchNames": {"type": "array"}}},
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string"},
                            "interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                            "scrapeTimeout": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                        },
                    },
                },
            },
        },
    },
}


def test_service_monitors_target_the_metrics_port_of_every_enabled_service() -> None:
    rendering = render_variant("servicemonitor")
    monitors = rendering.of_kind("ServiceMonitor")
    assert {monitor["metadata"]["name"] for monitor in monitors} == {
        fullname(name) for name in DEFAULT_ENABLED
    }
    for monitor in monitors:
        jsonschema.validate(monitor, SERVICE_MONITOR_SCHEMA)
        service = rendering.get("Service", monitor["metadata"]["name"])
        assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
        (endpoint,) = monitor["spec"]["endpoints"]
        assert endpoint == {"port": "metrics", "path": "/metrics", "interval": "15s", "scrapeTimeout": "5s"}
        assert "metrics" in {port["name"] for port in service["spec"]["ports"]}
        assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert render_variant("default").of_kind("ServiceMonitor") == []


# The fields of monitoring.coreos.com/v1 PrometheusRule the chart writes (the CRD's own schema, excerpted).
PROMETHEUS_RULE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "PrometheusRule"},
        "metadata": {"type": "object", "required": ["name", "namespace"]},
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["groups"],
            "properties": {
                "groups": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["name", "rules"],
                        "properties": {
                            "name": {"type": "string", "minLength": 1},
                            "interval": {"type": "string"},
                            "rules": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "required": ["expr"],
                                    "properties": {
                                        "alert": {"type": "string"},
                                        "record": {"type": "string"},
                                        "expr": {"type": ["string", "integer"]},
                                        "for": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h|d|w|y)$"},
                                        "labels": {
                                            "type": "object",
                                            "additionalProperties": {"type": "string"},
                                        },
                                        "annotations": {
                                            "type": "object",
                                            "additionalProperties": {"type": "string"},
                                        },
                                    },
                                },
                            },
                        },
                    },
                }
            },
        },
    },
}


def test_the_prometheus_rule_is_the_compose_alerts_file() -> None:
    rendering = render_variant("alerts-dashboard")
    rule = rendering.get("PrometheusRule", RELEASE)
    jsonschema.validate(rule, PROMETHEUS_RULE_SCHEMA)
    alerts_file = yaml.safe_load((CHART_DIR / "files" / "alerts.yaml").read_text(encoding="utf-8"))
    assert rule["spec"] == alerts_file
    assert rule["metadata"]["namespace"] == NAMESPACE
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert rule["metadata"]["labels"]["app.kubernetes.io/instance"] == RELEASE
    assert render_variant("default").of_kind("PrometheusRule") == []


def test_the_dashboard_config_map_carries_the_dashboard_file_for_the_grafana_sidecar() -> None:
    rendering = render_variant("alerts-dashboard")
    config_map = rendering.get("ConfigMap", f"{RELEASE}-dashboard")
    dashboard = json.loads((CHART_DIR / "files" / "dashboard.json").read_text(encoding="utf-8"))
    assert json.loads(config_map["data"]["mcp-sse.json"]) == dashboard
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["annotations"] == {"grafana_folder": "MCP"}
    assert config_map["metadata"]["namespace"] == "monitoring"
    in_release_namespace = render({"metrics": {"grafanaDashboard": {"enabled": True}}})
    assert in_release_namespace.get("ConfigMap", f"{RELEASE}-dashboard")["metadata"]["namespace"] == NAMESPACE
    assert f"{RELEASE}-dashboard" not in render_variant("default").names("ConfigMap")


# --- Pod Security Standards "restricted", written out -------------------------------------------------


def _restricted_violations(spec: dict[str, Any]) -> list[str]:
    problems = []
    pod_context = spec.get("securityContext", {})
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(flag):
            problems.append(f"{flag} is set")
    for volume in spec.get("volumes", []):
        allowed = {
            "name",
            "emptyDir",
            "persistentVolumeClaim",
            "configMap",
            "secret",
            "projected",
            "downwardAPI",
            "csi",
            "ephemeral",
        }
        if set(volume) - allowed:
            problems.append(f"volume {volume['name']} uses {sorted(set(volume) - allowed)}")
    for item in spec.get("containers", []) + spec.get("initContainers", []):
        context = item.get("securityContext", {})
        name = item["name"]
        if context.get("privileged"):
            problems.append(f"{name}: privileged")
        if context.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: allowPrivilegeEscalation is not false")
        if context.get("capabilities", {}).get("drop") != ["ALL"]:
            problems.append(f"{name}: capabilities are not drop [ALL]")
        if set(context.get("capabilities", {}).get("add", [])) - {"NET_BIND_SERVICE"}:
            problems.append(f"{name}: adds capabilities")
        if not (context.get("runAsNonRoot") or pod_context.get("runAsNonRoot")):
            problems.append(f"{name}: runAsNonRoot is not true")
        if context.get("runAsUser", pod_context.get("runAsUser")) in (0, None):
            problems.append(f"{name}: no non-zero runAsUser")
        seccomp = context.get("seccompProfile", pod_context.get("seccompProfile", {}))
        if seccomp.get("type") not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{name}: seccompProfile is not RuntimeDefault")
        if context.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{name}: root filesystem is writable")
        if any(port.get("hostPort") for port in item.get("ports", [])):
            problems.append(f"{name}: hostPort")
        if not item.get("resources", {}).get("limits"):
            problems.append(f"{name}: no resource limits")
    return problems


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_pod_meets_pod_security_restricted(variant: str) -> None:
    pods = list(render_variant(variant).pod_specs())
    assert pods
    violations = {name: problems for name, spec in pods if (problems := _restricted_violations(spec))}
    assert violations == {}


def test_the_restricted_checks_catch_a_weakened_pod() -> None:
    weakened = render({"common": {"containerSecurityContext": {"allowPrivilegeEscalation": True}}})
    _, spec = next(iter(weakened.pod_specs()))
    assert "allowPrivilegeEscalation is not false" in " ".join(_restricted_violations(spec))


def test_containers_keep_a_writable_tmp_on_a_read_only_root() -> None:
    for name, spec in render_variant("all-services").pod_specs():
        volumes = {volume["name"]: volume for volume in spec["volumes"]}
        assert "emptyDir" in volumes["tmp"], name
        for item in spec["containers"]:
            assert {"name": "tmp", "mountPath": "/tmp"} in item["volumeMounts"], name


# --- Deployments: the process contract ----------------------------------------------------------------


def test_each_deployment_runs_its_service_on_the_registry_ports_bound_to_all_interfaces() -> None:
    rendering = render_variant("all-services")
    for name, entry in registry()["services"].items():
        item = container(rendering, name)
        assert item["command"] == ["mcp-sse", "serve", name]
        assert item["image"] == f"{entry['image']}:{package_version()}"
        env = env_of(item)
        assert env["MCP_HOST"] == "0.0.0.0"
        assert env["MCP_PORT"] == str(entry["port"])
        assert env["MCP_METRICS_PORT"] == str(entry["metrics_port"])
        ports = {port["name"]: port["containerPort"] for port in item["ports"]}
        assert ports == {"mcp": entry["port"], "metrics": entry["metrics_port"]}


def test_pods_get_no_service_link_variables_and_only_known_mcp_settings() -> None:
    """Service links would inject MCP_<NAME>_PORT=tcp://... which the services reject as unknown settings."""
    rendering = render_variant("all-services")
    known = set(registry()["common_env"])
    for name in SERVICE_NAMES:
        deployment = rendering.get("Deployment", fullname(name))
        assert deployment["spec"]["template"]["spec"]["enableServiceLinks"] is False
        config = rendering.get("ConfigMap", fullname(name))["data"]
        variables = set(config) | set(env_of(container(rendering, name)))
        assert {key for key in variables if key.startswith("MCP_")} <= known, name


def test_probes_use_health_and_rollouts_never_lose_capacity() -> None:
    rendering = render_variant("default")
    for name in DEFAULT_ENABLED:
        deployment = rendering.get("Deployment", fullname(name))
        assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
        item = container(rendering, name)
        for probe in ("startupProbe", "readinessProbe"):
            assert item[probe]["httpGet"] == {"path": "/health", "port": "mcp"}, (name, probe)
        assert item["livenessProbe"]["tcpSocket"] == {"port": "mcp"}


@pytest.mark.parametrize(("grace", "expected"), [(None, 20), ("30", 40), ("2.5", 13)])
def test_termination_grace_covers_the_pre_stop_sleep_and_the_drain(grace: str | None, expected: int) -> None:
    values = {} if grace is None else {"common": {"env": {"MCP_SHUTDOWN_GRACE_S": grace}}}
    rendering = render(values)
    spec = rendering.get("Deployment", fullname("fetch"))["spec"]["template"]["spec"]
    sleep = container(rendering, "fetch")["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert sleep == 5
    assert spec["terminationGracePeriodSeconds"] == expected


def test_config_changes_roll_the_pods() -> None:
    before = render_variant("default").get("Deployment", fullname("fetch"))
    after = render({"services": {"fetch": {"env": {"FETCH_TIMEOUT_S": "5"}}}}).get(
        "Deployment", fullname("fetch")
    )
    key = "checksum/config"
    assert (
        before["spec"]["template"]["metadata"]["annotations"][key]
        != after["spec"]["template"]["metadata"]["annotations"][key]
    )


def test_image_digest_and_registry_are_honoured() -> None:
    digest = "sha256:" + "ab" * 32
    values = {
        "global": {"imageRegistry": "registry.example:5000"},
        "services": {"fetch": {"image": {"tag": "9.9.9", "digest": digest}}},
    }
    assert (
        container(render(values), "fetch")["image"] == f"registry.example:5000/mcp-sse/fetch:9.9.9@{digest}"
    )


def test_prometheus_annotations_point_at_the_metrics_port() -> None:
    rendering = render_variant("default")
    for name in DEFAULT_ENABLED:
        annotations = rendering.get("Deployment", fullname(name))["spec"]["template"]["metadata"][
            "annotations"
        ]
        port = chart_values()["services"][name]["metricsPort"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == str(port)
        assert annotations["prometheus.io/path"] == "/metrics"
    quiet = render({"metrics": {"podAnnotations": False}}).get("Deployment", fullname("fetch"))
    assert "prometheus.io/scrape" not in quiet["spec"]["template"]["metadata"]["annotations"]


# --- Services, replicas, HPA, PDB ----------------------------------------------------------------------


def test_services_expose_the_mcp_and_metrics_ports_without_affinity_for_one_replica() -> None:
    rendering = render_variant("default")
    for name in DEFAULT_ENABLED:
        service = rendering.get("Service", fullname(name))
        block = chart_values()["services"][name]
        ports = {port["name"]: (port["port"], port["targetPort"]) for port in service["spec"]["ports"]}
        assert ports == {"mcp": (block["port"], "mcp"), "metrics": (block["metricsPort"], "metrics")}
        assert service["spec"]["sessionAffinity"] == "None"
        assert service["spec"]["type"] == "ClusterIP"


def test_several_replicas_get_client_ip_affinity_unless_turned_off_and_spread_over_nodes() -> None:
    rendering = render_variant("replicas-hpa")
    for name in ("postgres", "fetch", "github"):
        service = rendering.get("Service", fullname(name))
        assert service["spec"]["sessionAffinity"] == "ClientIP", name
        assert service["spec"]["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"] > 0
    assert rendering.get("Service", fullname("filesystem"))["spec"]["sessionAffinity"] == "None"
    for name in ("postgres", "fetch", "filesystem", "github"):
        spec = rendering.get("Deployment", fullname(name))["spec"]["template"]["spec"]
        keys = {constraint["topologyKey"] for constraint in spec["topologySpreadConstraints"]}
        assert keys == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}
    single = render_variant("default").get("Deployment", fullname("fetch"))["spec"]["template"]["spec"]
    assert "topologySpreadConstraints" not in single


def test_autoscaled_deployments_leave_replicas_to_the_hpa() -> None:
    rendering = render_variant("replicas-hpa")
    assert rendering.names("HorizontalPodAutoscaler") == {fullname("fetch"), fullname("github")}
    hpa = rendering.get("HorizontalPodAutoscaler", fullname("fetch"))
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": fullname("fetch"),
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 10)
    assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 60
    assert "replicas" not in rendering.get("Deployment", fullname("fetch"))["spec"]
    assert rendering.get("Deployment", fullname("postgres"))["spec"]["replicas"] == 3


def test_disruption_budgets_select_their_service_pods() -> None:
    rendering = render_variant("replicas-hpa")
    assert rendering.names("PodDisruptionBudget") == {
        fullname(name) for name in ("postgres", "fetch", "github")
    }
    for pdb in rendering.of_kind("PodDisruptionBudget"):
        deployment = rendering.get("Deployment", pdb["metadata"]["name"])
        assert pdb["spec"]["selector"] == deployment["spec"]["selector"]
        assert pdb["spec"]["maxUnavailable"] == 1


def test_node_ports_are_set_only_for_the_node_port_service_type() -> None:
    rendering = render({"service": {"type": "NodePort"}, "services": {"fetch": {"nodePort": 30002}}})
    service = rendering.get("Service", fullname("fetch"))
    assert service["spec"]["type"] == "NodePort"
    assert next(port for port in service["spec"]["ports"] if port["name"] == "mcp")["nodePort"] == 30002


# --- Secrets, service accounts, RBAC, storage ----------------------------------------------------------


def test_inline_secrets_go_to_a_secret_never_to_the_config_map() -> None:
    rendering = render_variant("inline-secrets")
    assert rendering.names("Secret") == {fullname(name) for name in DEFAULT_ENABLED}
    postgres = rendering.get("Secret", fullname("postgres"))["stringData"]
    assert postgres == {
        "DATABASE_URL": "postgresql://mcp_ro:not-a-real-password@postgresql:5432/app",
        "MCP_AUTH_TOKENS": "token-one,token-two",
    }
    assert rendering.get("Secret", fullname("github"))["stringData"]["GITHUB_TOKEN"] == "not-a-real-token"
    secret_names = {
        name
        for entry in registry()["services"].values()
        for name, spec in entry["env"].items()
        if spec["secret"]
    }
    for config in rendering.of_kind("ConfigMap"):
        assert not set(config["data"]) & (secret_names | {"MCP_AUTH_TOKENS"})
    env_from = container(rendering, "postgres")["envFrom"]
    assert env_from == [
        {"configMapRef": {"name": fullname("postgres")}},
        {"secretRef": {"name": fullname("postgres")}},
    ]


def test_existing_secrets_replace_the_chart_made_ones() -> None:
    rendering = render_variant("existing-secrets")
    assert rendering.of_kind("Secret") == []
    refs = {
        name: [source for source in container(rendering, name)["envFrom"] if "secretRef" in source]
        for name in DEFAULT_ENABLED
    }
    assert refs["postgres"] == [
        {"secretRef": {"name": "mcp-sse-env"}},
        {"secretRef": {"name": "mcp-postgres-database"}},
    ]
    assert refs["github"] == [
        {"secretRef": {"name": "mcp-sse-env"}},
        {"secretRef": {"name": "mcp-github-token"}},
    ]
    assert refs["fetch"] == [{"secretRef": {"name": "mcp-sse-env"}}]
    assert render_variant("default").of_kind("Secret") == []


def test_only_monitoring_mounts_an_api_token_and_only_monitoring_gets_rbac() -> None:
    rendering = render_variant("all-services")
    for name in SERVICE_NAMES:
        account = rendering.get("ServiceAccount", fullname(name))
        spec = rendering.get("Deployment", fullname(name))["spec"]["template"]["spec"]
        expected = name == "monitoring"
        assert account["automountServiceAccountToken"] is expected, name
        assert spec["automountServiceAccountToken"] is expected, name
        assert spec["serviceAccountName"] == fullname(name)
    assert rendering.of_kind("ClusterRole") == [] and rendering.of_kind("ClusterRoleBinding") == []
    roles = rendering.of_kind("Role")
    assert sorted(role["metadata"]["namespace"] for role in roles) == ["mcp", "webui"]
    for role in roles:
        assert role["rules"] == [
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
        ]
    for binding in rendering.of_kind("RoleBinding"):
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": fullname("monitoring"), "namespace": NAMESPACE}
        ]
        assert binding["roleRef"]["name"] == fullname("monitoring")
    assert env_of(container(rendering, "monitoring"))["MONITORING_NAMESPACES"] == "mcp,webui"
    assert render_variant("default").of_kind("Role") == []


def test_monitoring_reads_its_own_namespace_by_default() -> None:
    rendering = render(
        {
            "services": {"monitoring": {"enabled": True}},
            "networkPolicy": {"kubeApi": {"cidrs": ["10.0.0.1/32"]}},
        }
    )
    assert [role["metadata"]["namespace"] for role in rendering.of_kind("Role")] == [NAMESPACE]
    assert env_of(container(rendering, "monitoring"))["MONITORING_NAMESPACES"] == NAMESPACE


def test_filesystem_serves_a_read_only_workspace_and_a_writable_shared_root() -> None:
    for variant, sources in (
        ("default", ("emptyDir", "emptyDir")),
        ("filesystem-claims", ("team-workspace", "team-shared")),
    ):
        rendering = render_variant(variant)
        item = container(rendering, "filesystem")
        mounts = {mount["name"]: mount for mount in item["volumeMounts"]}
        assert mounts["workspace"] == {"name": "workspace", "mountPath": "/workspace", "readOnly": True}
        assert mounts["shared"] == {"name": "shared", "mountPath": "/shared"}
        assert (
            rendering.get("ConfigMap", fullname("filesystem"))["data"]["ALLOWED_PATHS"]
            == "/workspace:ro,/shared:rw"
        )
        volumes = {
            volume["name"]: volume
            for volume in rendering.get("Deployment", fullname("filesystem"))["spec"]["template"]["spec"][
                "volumes"
            ]
        }
        for volume, source in zip(("workspace", "shared"), sources, strict=True):
            if source == "emptyDir":
                assert "emptyDir" in volumes[volume]
            else:
                assert volumes[volume]["persistentVolumeClaim"]["claimName"] == source
        assert volumes["workspace"].get("persistentVolumeClaim", {}).get("readOnly", True) is True


# --- NOTES.txt and the helm test ---------------------------------------------------------------------


def test_notes_print_the_urls_and_a_litellm_snippet_that_parses() -> None:
    notes = render_variant("default").notes
    for name in DEFAULT_ENABLED:
        port = chart_values()["services"][name]["port"]
        host = f"{fullname(name)}.{NAMESPACE}.svc.cluster.local:{port}"
        assert f"http://{host}/sse" in notes and f"http://{host}/mcp" in notes
    snippet = notes.split("ready to paste:\n", 1)[1].split("\n(For the legacy", 1)[0]
    config = yaml.safe_load(snippet)
    assert config["general_settings"] == {"master_key": "os.environ/LITELLM_MASTER_KEY"}
    servers = config["mcp_servers"]
    assert set(servers) == {f"mcp_{name}" for name in DEFAULT_ENABLED}
    assert servers["mcp_fetch"] == {
        "url": f"http://{fullname('fetch')}.{NAMESPACE}.svc.cluster.local:8002/mcp",
        "transport": "http",
    }


def test_the_helm_test_pod_checks_health_of_every_enabled_service() -> None:
    rendering = render_variant("all-services")
    pod = rendering.get("Pod", f"{RELEASE}-test-health")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert pod["spec"]["restartPolicy"] == "Never"
    (item,) = pod["spec"]["containers"]
    urls = item["command"][3:]
    expected = [
        f"http://{fullname(name)}.{NAMESPACE}.svc:{registry()['services'][name]['port']}/health"
        for name in sorted(SERVICE_NAMES)
    ]
    assert urls == expected
    script = item["command"][2]
    compile(script, "test-health", "exec")
    assert "sys.exit(1 if failures else 0)" in script


def test_the_health_check_script_fails_on_an_unhealthy_service(tmp_path: Path) -> None:
    """Runs the pod's script against two loopback HTTP servers: one answering 200, one answering 503."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(
                200 if self.path == "/health" and self.server.server_port == healthy.server_port else 503
            )
            self.end_headers()
            self.wfile.write(b'{"status": "ok"}')

        def log_message(self, *args: Any) -> None:
            pass

    healthy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    degraded = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    for server in (healthy, degraded):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        (item,) = render_variant("default").get("Pod", f"{RELEASE}-test-health")["spec"]["containers"]
        script = item["command"][2]
        ok = subprocess.run(
            ["python3", "-c", script, f"http://127.0.0.1:{healthy.server_port}/health"],
            capture_output=True,
            timeout=30,
            check=False,
        )
        bad = subprocess.run(
            [
                "python3",
                "-c",
                script,
                f"http://127.0.0.1:{healthy.server_port}/health",
                f"http://127.0.0.1:{degraded.server_port}/health",
            ],
            capture_output=True,
            timeout=30,
            check=False,
        )
    finally:
        for server in (healthy, degraded):
            server.shutdown()
    assert ok.returncode == 0, ok.stdout
    assert bad.returncode == 1 and b"FAILED" in bad.stdout


# --- checkov ------------------------------------------------------------------------------------------

# Every suppression the chart carries, with the reason it is acceptable; anything else is a finding.
JUSTIFIED_SKIPS = {
    "CKV_K8S_43": "image digests are optional values; kind/k3s side-loaded builds have none",
    "CKV_K8S_15": "IfNotPresent is required for side-loaded images; tags are immutable versions",
    "CKV_K8S_35": "the services take settings (secrets included) from the environment by design",
    "CKV_K8S_38": "mcp-monitoring reads pods and pods/log through the API",
    "CKV_K8S_8": "the helm test pod is one-shot",
    "CKV_K8S_9": "the helm test pod is one-shot",
}


@pytest.mark.slow
def test_checkov_finds_nothing_unjustified_in_any_variant(tmp_path: Path) -> None:
    expected_resources = set()
    for variant in VARIANTS:
        rendering = render_variant(variant)
        (tmp_path / f"{variant}.yaml").write_text(rendering.yaml_text(), encoding="utf-8")
        expected_resources |= {
            (f"/{variant}.yaml", "{kind}.{metadata[namespace]}.{metadata[name]}".format_map(document))
            for document in rendering.documents
            if document["kind"] in ("Deployment", "Pod", "Service", "ServiceAccount", "Role", "RoleBinding")
        }
    report = run_checkov(tmp_path)
    results = report["results"]
    assert report["summary"]["parsing_errors"] == 0
    checked = {
        (check["file_path"], check["resource"])
        for kind in ("passed_checks", "failed_checks", "skipped_checks")
        for check in results[kind]
    }
    # Every workload of every variant was scanned (a silent "no runners" pass would check nothing).
    assert expected_resources - checked == set()
    failed = [
        (check["check_id"], check["resource"], check["check_name"]) for check in results["failed_checks"]
    ]
    assert failed == []
    skipped = results["skipped_checks"]
    unjustified = [
        (check["check_id"], check["resource"])
        for check in skipped
        if check["check_id"] not in JUSTIFIED_SKIPS
    ]
    assert unjustified == []
    assert all(len(check["check_result"].get("suppress_comment", "")) > 20 for check in skipped)
    monitoring_token = [check for check in skipped if check["check_id"] == "CKV_K8S_38"]
    assert monitoring_token and all("monitoring" in check["resource"] for check in monitoring_token)


# --- The helm CLI stand-in -----------------------------------------------------------------------------


def test_helm_stand_in_lints_and_templates_like_the_sdk() -> None:
    require_tool(HELM_PYTHON)
    lint_run = subprocess.run(
        [str(HELM_STAND_IN), "lint", str(CHART_DIR), "--strict"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert lint_run.returncode == 0, lint_run.stdout + lint_run.stderr
    template_run = subprocess.run(
        [
            str(HELM_STAND_IN),
            "template",
            RELEASE,
            str(CHART_DIR),
            "-n",
            NAMESPACE,
            "--set",
            "services.monitoring.enabled=true",
            "--set",
            "networkPolicy.kubeApi.cidrs={10.0.0.1/32}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert template_run.returncode == 0, template_run.stderr
    documents = [document for document in yaml.safe_load_all(template_run.stdout) if document]
    expected = render(
        {
            "services": {"monitoring": {"enabled": True}},
            "networkPolicy": {"kubeApi": {"cidrs": ["10.0.0.1/32"]}},
        }
    )
    assert sorted(map(json.dumps, documents)) == sorted(map(json.dumps, expected.documents))
    refused = subprocess.run(
        [str(HELM_STAND_IN), "template", RELEASE, str(CHART_DIR), "--set", "services.fetch.bogus=1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 1 and "bogus" in refused.stderr


# --- kind-config.yaml and skaffold.yaml ---------------------------------------------------------------


def _kind_config() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "kind-config.yaml").read_text(encoding="utf-8"))
    return data


def _skaffold() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "skaffold.yaml").read_text(encoding="utf-8"))
    return data


def _apply_profiles(config: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """skaffold's profile activation: JSON-patch `add`/`replace` operations, in order."""
    config = copy.deepcopy(config)
    profiles = {profile["name"]: profile for profile in config.pop("profiles")}
    for name in names:
        for patch in profiles[name].get("patches", []):
            assert patch["op"] in ("add", "replace"), patch
            *parents, last = patch["path"].strip("/").split("/")
            node: Any = config
            for part in parents:
                node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
            if patch["op"] == "replace":
                assert last in node, patch["path"]
            node[last] = copy.deepcopy(patch["value"])
    return config


def _skaffold_values(config: dict[str, Any]) -> dict[str, Any]:
    """The helm values skaffold passes for the release: --set for setValues and setValueTemplates, with the
    image templates filled the way skaffold fills them for a built artifact."""
    (release,) = config["deploy"]["helm"]["releases"]
    expressions = [f"{key}={value}" for key, value in release.get("setValues", {}).items()]
    for key, template in release.get("setValueTemplates", {}).items():
        filled = re.sub(
            r"\{\{\.IMAGE_REPO_(\w+)\}\}",
            lambda match: match.group(1).replace("_", "-", 1).replace("_", "/"),
            str(template),
        )
        filled = re.sub(r"\{\{\.IMAGE_TAG_\w+\}\}", "dev-0123abcd", filled)
        assert "{{" not in filled, f"unknown template in {key}: {template}"
        expressions.append(f"{key}={filled}")
    return values_from_set_flags(expressions)


def test_kind_config_keeps_the_network_policy_enforcing_cni_and_maps_the_node_ports_to_loopback() -> None:
    config = _kind_config()
    assert (config["apiVersion"], config["kind"]) == ("kind.x-k8s.io/v1alpha4", "Cluster")
    assert config["name"] == "mcp-sse"
    assert config["networking"].get("disableDefaultCNI", False) is False
    assert config["networking"]["apiServerAddress"] == "127.0.0.1"
    (node,) = config["nodes"]
    mappings = {
        (item["containerPort"], item["hostPort"], item["listenAddress"]) for item in node["extraPortMappings"]
    }
    assert mappings == {(30000 + index, 30000 + index, "127.0.0.1") for index in range(1, 6)}


def test_skaffold_builds_every_registry_image_from_the_one_dockerfile() -> None:
    config = _skaffold()
    assert (config["apiVersion"], config["kind"]) == ("skaffold/v4beta13", "Config")
    artifacts = {artifact["image"]: artifact for artifact in config["build"]["artifacts"]}
    images = {entry["image"]: name for name, entry in registry()["services"].items()}
    assert set(artifacts) == set(images)
    for image, name in images.items():
        artifact = artifacts[image]
        assert artifact["context"] == "."
        assert artifact["docker"] == {"dockerfile": "Dockerfile", "buildArgs": {"SERVICE": name}}
        assert "requires" not in artifact
    assert re.search(r"^FROM \$\{SERVICE\}$", (ROOT / "Dockerfile").read_text(encoding="utf-8"), re.MULTILINE)


def test_skaffold_deploys_the_chart_with_its_built_images_and_forwards_8001_to_8005() -> None:
    config = _skaffold()
    (release,) = config["deploy"]["helm"]["releases"]
    assert (ROOT / release["chartPath"]) == CHART_DIR
    for name, entry in registry()["services"].items():
        variable = entry["image"].replace("-", "_").replace("/", "_")
        assert (
            release["setValueTemplates"][f"services.{name}.image.repository"]
            == f"{{{{.IMAGE_REPO_{variable}}}}}"
        )
        assert release["setValueTemplates"][f"services.{name}.image.tag"] == f"{{{{.IMAGE_TAG_{variable}}}}}"
    rendering = render(
        _skaffold_values(_apply_profiles(config, ["kind"])),
        release=release["name"],
        namespace=release["namespace"],
    )
    services = {service["metadata"]["name"]: service for service in rendering.of_kind("Service")}
    forwards = config["portForward"]
    assert sorted(forward["localPort"] for forward in forwards) == [8001, 8002, 8003, 8004, 8005]
    for forward in forwards:
        assert forward["address"] == "127.0.0.1" and forward["resourceType"] == "service"
        assert forward["namespace"] == release["namespace"]
        ports = {port["port"] for port in services[forward["resourceName"]]["spec"]["ports"]}
        assert forward["port"] == forward["localPort"] and forward["port"] in ports
    for name, entry in registry()["services"].items():
        assert container(rendering, name)["image"] == f"{entry['image']}:dev-0123abcd"


@pytest.mark.parametrize(
    "profiles", [["kind"], ["k3s"], ["kind", "env-secret"], ["kind", "nodeports"]], ids="+".join
)
def test_skaffold_profiles_render_a_valid_chart_for_their_cluster(profiles: list[str]) -> None:
    config = _apply_profiles(_skaffold(), profiles)
    values = _skaffold_values(config)
    rendering = render(values)
    clusters = {"kind": ["10.244.0.0/16", "10.96.0.0/12"], "k3s": ["10.42.0.0/16", "10.43.0.0/16"]}
    assert values["networkPolicy"]["internet"]["clusterCIDRs"] == clusters[profiles[0]]
    if profiles[0] == "kind":
        kind_network = _kind_config()["networking"]
        assert clusters["kind"] == [kind_network["podSubnet"], kind_network["serviceSubnet"]]
        assert config["deploy"]["kubeContext"] == f"kind-{_kind_config()['name']}"
        assert "mcp-sse-monitoring" in rendering.names("Deployment")
    else:
        assert config["build"]["local"]["push"] is True
    if "env-secret" in profiles:
        assert {"secretRef": {"name": "mcp-sse-env"}} in container(rendering, "fetch")["envFrom"]
    if "nodeports" in profiles:
        node_ports = {
            port["nodePort"]
            for service in rendering.of_kind("Service")
            for port in service["spec"]["ports"]
            if service["spec"]["type"] == "NodePort" and "nodePort" in port
        }
        mapped = {item["containerPort"] for item in _kind_config()["nodes"][0]["extraPortMappings"]}
        assert node_ports == mapped
    for _, spec in rendering.pod_specs():
        assert _restricted_violations(spec) == []
