"""get_container_logs in Kubernetes: pod logs through the official client, in-cluster configuration.

No Kubernetes API server can run here, so these tests serve a stand-in (tests/services/monitoring/
standins.py) answering ``/api/v1/namespaces/{ns}/pods/{name}/log`` as kube-apiserver does, over TLS with
a bearer-token check, and give the service an in-cluster environment (KUBERNETES_SERVICE_HOST/PORT and a
service-account directory) pointing at it. The real ``kubernetes`` client makes every request.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from mcp import Client

from services.monitoring.service import service
from tests.services.monitoring.standins import Pod
from tests.services.monitoring.support import SERVICE_ACCOUNT_TOKEN, make_settings, rpc_call


def lines_of(count: int, prefix: str = "line", start: datetime | None = None) -> list[tuple[datetime, str]]:
    origin = start or datetime.now(UTC) - timedelta(minutes=30)
    return [(origin + timedelta(seconds=index), f"{prefix} {index}") for index in range(count)]


async def test_pod_logs_come_through_the_kubernetes_client_newest_last(serve_service, kube_api):
    standin, platform = kube_api
    standin.pods[("mcp", "web-7d9c4-x2x8q")] = Pod({"app": lines_of(50)})
    url, _ = serve_service(service, make_settings(platform))

    async with Client(f"{url}/mcp", mode="auto") as client:
        result = await client.call_tool("get_container_logs", {"name": "web-7d9c4-x2x8q", "tail": 5})

    assert result.is_error is False
    logs = result.structured_content
    assert logs["source"] == "kubernetes" and logs["namespace"] == "mcp"
    assert [line["message"] for line in logs["lines"]] == [
        "line 45",
        "line 46",
        "line 47",
        "line 48",
        "line 49",
    ]
    assert all(line["timestamp"].endswith("Z") for line in logs["lines"])
    assert logs["truncated"] is False
    request = standin.requests[-1]
    assert request.path == "/api/v1/namespaces/mcp/pods/web-7d9c4-x2x8q/log"
    assert request.query == {"tailLines": "5", "timestamps": "true"}
    assert request.headers["authorization"] == f"bearer {SERVICE_ACCOUNT_TOKEN}"
    assert "line 49" in result.content[0].text.splitlines()[-1]


def test_json_and_unicode_log_lines_come_back_verbatim(kube_api, serve_service):
    standin, platform = kube_api
    written = ['{"level":"info","msg":"ready","port":8005}', "naïve ☃ line\twith tab", "[1, 2, 3]"]
    stamps = [when for when, _ in lines_of(3)]
    standin.pods[("mcp", "api-0")] = Pod({"api": list(zip(stamps, written, strict=True))})
    url, _ = serve_service(service, make_settings(platform))

    result = rpc_call(url, "get_container_logs", {"name": "api-0"})

    assert [line["message"] for line in result["structuredContent"]["lines"]] == written


def test_namespaces_outside_the_allowed_list_are_refused_before_any_request(serve_service, kube_api):
    standin, platform = kube_api
    standin.pods[("apps", "api-0")] = Pod({"api": lines_of(3)})
    url, _ = serve_service(service, make_settings(platform, MONITORING_NAMESPACES="apps,mcp"))

    refused = rpc_call(url, "get_container_logs", {"name": "api-0", "namespace": "kube-system"})
    allowed = rpc_call(url, "get_container_logs", {"name": "api-0", "namespace": "apps"})
    defaulted = rpc_call(url, "get_container_logs", {"name": "api-0"})

    assert refused["isError"] is True
    assert "namespace 'kube-system' is not allowed" in refused["content"][0]["text"]
    assert "apps, mcp" in refused["content"][0]["text"]
    assert allowed["isError"] is False and len(allowed["structuredContent"]["lines"]) == 3
    # Without a namespace the pod's own (mcp, from the service account) is used, as it is allowed.
    assert defaulted["isError"] is True and 'pods "api-0" not found' in defaulted["content"][0]["text"]
    paths = [request.path for request in standin.requests]
    assert paths == ["/api/v1/namespaces/apps/pods/api-0/log", "/api/v1/namespaces/mcp/pods/api-0/log"]


def test_only_the_pods_own_namespace_is_allowed_when_none_are_configured(serve_service, kube_api):
    standin, platform = kube_api
    url, _ = serve_service(service, make_settings(platform))

    result = rpc_call(url, "get_container_logs", {"name": "api-0", "namespace": "apps"})

    assert result["isError"] is True
    assert "allowed namespaces: mcp (MONITORING_NAMESPACES)" in result["content"][0]["text"]
    assert standin.requests == []


def test_container_tail_and_since_reach_the_api_and_the_caps_bound_the_answer(serve_service, kube_api):
    standin, platform = kube_api
    recent = lines_of(30, "sidecar", start=datetime.now(UTC) - timedelta(seconds=40))
    standin.pods[("mcp", "web-0")] = Pod({"app": lines_of(5), "sidecar": lines_of(30, "old") + recent})
    url, _ = serve_service(service, make_settings(platform, MONITORING_MAX_LOG_LINES="20"))

    several = rpc_call(url, "get_container_logs", {"name": "web-0"})
    result = rpc_call(
        url, "get_container_logs", {"name": "web-0", "container": "sidecar", "tail": 500, "since": "5m"}
    )

    assert several["isError"] is True
    assert (
        "a container name must be specified for pod web-0, choose one of: [app sidecar]"
        in (several["content"][0]["text"])
    )
    query = standin.requests[-1].query
    assert query["container"] == "sidecar"
    assert query["tailLines"] == "20"  # tail 500 capped by MONITORING_MAX_LOG_LINES
    assert 295 <= int(query["sinceSeconds"]) <= 330
    messages = [line["message"] for line in result["structuredContent"]["lines"]]
    assert messages == [f"sidecar {index}" for index in range(10, 30)]


def test_byte_cap_keeps_the_newest_lines_and_says_so(serve_service, kube_api):
    standin, platform = kube_api
    standin.pods[("mcp", "chatty")] = Pod(
        {"app": [(when, text + " " + "x" * 90) for when, text in lines_of(40)]}
    )
    url, _ = serve_service(service, make_settings(platform, MONITORING_MAX_LOG_BYTES="1000"))

    result = rpc_call(url, "get_container_logs", {"name": "chatty", "tail": 40})

    lines = result["structuredContent"]["lines"]
    assert result["structuredContent"]["truncated"] is True
    assert sum(len(line["message"].encode()) for line in lines) <= 1000
    assert lines[-1]["message"].startswith("line 39 ")
    assert len(lines) == 1000 // 98  # each message is 98 bytes


def test_invalid_pod_and_container_names_never_reach_the_api(serve_service, kube_api):
    standin, platform = kube_api
    url, _ = serve_service(service, make_settings(platform))

    traversal = rpc_call(url, "get_container_logs", {"name": "../../secrets/x"})
    upper = rpc_call(url, "get_container_logs", {"name": "Web-0"})
    query_smuggling = rpc_call(url, "get_container_logs", {"name": "web-0", "container": "app?follow=true"})

    for result in (traversal, upper, query_smuggling):
        assert result["isError"] is True
        assert "is not a valid" in result["content"][0]["text"]
    assert standin.requests == []


def test_rbac_refusals_and_bad_tokens_are_explained(serve_service, kube_api):
    _, platform = kube_api
    url, _ = serve_service(service, make_settings(platform, MONITORING_NAMESPACES="mcp,locked"))
    forbidden = rpc_call(url, "get_container_logs", {"name": "db-0", "namespace": "locked"})

    (platform.serviceaccount_dir / "token").write_text("expired-token")
    other_url, _ = serve_service(service, make_settings(platform))
    unauthorized = rpc_call(other_url, "get_container_logs", {"name": "db-0"})

    assert forbidden["isError"] is True
    text = forbidden["content"][0]["text"]
    assert "may not read pod logs in namespace locked" in text and 'cannot get resource "pods/log"' in text
    assert unauthorized["isError"] is True
    assert "refused the service account's token (401" in unauthorized["content"][0]["text"]
    assert "expired-token" not in unauthorized["content"][0]["text"]


def test_health_reports_the_kubernetes_api_and_its_version(serve_service, kube_api):
    standin, platform = kube_api
    url, _ = serve_service(service, make_settings(platform))

    health = httpx.get(f"{url}/health", timeout=10).json()

    check = health["checks"]["container_logs"]
    assert check["status"] == "ok"
    assert "Kubernetes v1.30.0" in check["detail"] and "namespaces: mcp" in check["detail"]
    assert standin.requests[-1].path == "/version"
    assert SERVICE_ACCOUNT_TOKEN not in str(health)
