"""The chart's rendered pods run: ``podman kube play`` of its Deployments, ConfigMaps and Secrets with the
project's own images, then a rolling restart of a two-replica service under load.

The chart is rendered through the Helm SDK (release ``kube-play``, namespace ``mcp``) with all five
services, auth tokens, a small common body limit, two mcp-postgres replicas and a DATABASE_URL that
points at a real PostgreSQL container on the same podman network. tests/deploy/kube_play.py lists every
transformation of the rendered manifests and why (Secrets as podman 4.3 reads them, host ports on
127.0.0.1, one pod per played Deployment, per-pod emptyDir names, hostAliases for the helm test pod).
Probes, preStop and the termination grace period are carried out by the test the way the kubelet
does, from the rendered values; haproxy in TCP mode is the Service: its health check is the readiness
probe and a terminating pod leaves it one second after deletion, as kube-proxy would learn of it.

Not proved here: NetworkPolicies (kube play does not enforce them: tests/deploy/test_networkpolicies.py
proves them by analysis), the API server's admission (Pod Security, runAsNonRoot refusal), scheduling,
Services, ServiceAccounts, RBAC and the image pull path. docs/KUBERNETES.md says the same.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.deploy.conftest import DB_PASSWORD, TEST_DB_IMAGE, BuiltImage, Podman
from tests.deploy.helm_support import NAMESPACE, SERVICE_NAMES, Rendering, render
from tests.deploy.kube_play import (
    Haproxy,
    KubePlay,
    PlayedPod,
    Termination,
    probe_once,
    wait_for_probe,
)
from tests.support.servers import free_port

# The first test (with test_containers.py before it in the session) builds the images in its set-up.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

RELEASE = "kube-play"
PREFIX = f"{RELEASE}-mcp-sse"
NETWORK = "mcp-kube-play"
DB = "mcp-kube-play-db"
TOKEN = "kube-play-token-0123456789"
BODY_LIMIT = 65536
ROLLED = "postgres"
VALUES: dict[str, Any] = {
    "secrets": {"authTokens": TOKEN},
    "common": {"env": {"MCP_MAX_BODY_BYTES": str(BODY_LIMIT)}},
    "networkPolicy": {"kubeApi": {"cidrs": ["10.0.0.1/32"]}},
    "services": {
        "monitoring": {"enabled": True},
        ROLLED: {
            "replicas": 2,
            "env": {"POSTGRES_MAX_ROWS": "2"},
            "secretEnv": {"DATABASE_URL": f"postgresql://mcp:{DB_PASSWORD}@{DB}:5432/demo"},
        },
    },
}
# kube-proxy learns of a deleted pod a moment after the kubelet starts its preStop hook.
ENDPOINT_LAG_S = 1.0
KEEP_ALIVE_WORKERS = 2
FRESH_CONNECTION_WORKERS = 2
THINK_S = 0.1
MAX_CALLS = 800
SLOW_QUERY = "SELECT pg_sleep(0.1) AS slept, 1 AS one"


@dataclass
class Cluster:
    rendering: Rendering
    kube: KubePlay
    pods: dict[str, list[PlayedPod]]
    startup_attempts: dict[str, int] = field(default_factory=dict)

    def deployment(self, service: str) -> dict[str, Any]:
        return self.rendering.get("Deployment", f"{PREFIX}-{service}")


def _quantity(text: str) -> float:
    """A Kubernetes quantity as the chart writes them (500m, 128Mi, 1Gi, 2)."""
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    for suffix, factor in units.items():
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


@pytest.fixture(scope="module")
def cluster(
    podman: Podman, built_images: dict[str, BuiltImage], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """Every rendered Deployment played (each replica its own pod), started by its startup probe."""
    for tool in ("catatonit", "haproxy"):  # podman's pause image needs catatonit; haproxy is the Service
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: run scripts/bootstrap.sh test (scripts/apt/containers.txt)")
    rendering = render(VALUES, release=RELEASE, namespace=NAMESPACE)
    kube = KubePlay(podman, tmp_path_factory.mktemp("kube-play"), NETWORK)
    podman.run("rm", "--force", "--time", "0", DB, check=False)
    created_network = podman.run("network", "exists", NETWORK, check=False).returncode != 0
    try:
        if created_network:
            podman.run("network", "create", NETWORK)
        podman.run("run", "-d", "--name", DB, "--network", NETWORK, TEST_DB_IMAGE)
        deadline = time.monotonic() + 60
        while podman.run("exec", DB, "pg_isready", "-h", "127.0.0.1", "-q", check=False).returncode != 0:
            assert time.monotonic() < deadline, "the test PostgreSQL did not start"
            time.sleep(0.5)
        for secret in rendering.of_kind("Secret"):
            kube.create_secret(secret)
        config_maps = rendering.of_kind("ConfigMap")
        pods: dict[str, list[PlayedPod]] = {}
        for deployment in rendering.of_kind("Deployment"):
            service = deployment["metadata"]["name"].removeprefix(f"{PREFIX}-")
            pods[service] = [
                kube.play_deployment(deployment, suffix, config_maps)
                for suffix in "ab"[: deployment["spec"]["replicas"]]
            ]
        result = Cluster(rendering, kube, pods)
        for replicas in pods.values():
            for pod in replicas:
                try:
                    attempts = wait_for_probe(pod.container_spec["startupProbe"], pod.host_ports)
                except AssertionError as exc:
                    raise AssertionError(f"{pod.pod}: {exc}\n{kube.logs(pod.container)[-3000:]}") from None
                result.startup_attempts[pod.pod] = attempts
        yield result
    finally:
        kube.close()
        podman.run("rm", "--force", "--time", "0", DB, check=False)
        if created_network:
            podman.run("network", "rm", NETWORK, check=False)


def _mcp(url: str, message: dict[str, Any], token: str | None = TOKEN, **kwargs: Any) -> httpx.Response:
    headers = {"Accept": "application/json, text/event-stream"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.post(f"{url}/mcp", json=message, headers=headers, timeout=30, **kwargs)


def _tool_call(name: str, arguments: dict[str, Any], call_id: int = 1) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": call_id,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments},
    }


TOOLS_LIST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}


# --- the pods start, probes pass -----------------------------------------------------------------------


def test_the_rendering_holds_every_service_and_two_postgres_replicas(cluster: Cluster) -> None:
    assert set(cluster.pods) == set(SERVICE_NAMES)
    assert [len(cluster.pods[name]) for name in SERVICE_NAMES] == [2, 1, 1, 1, 1]


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_every_pod_runs_and_passes_its_startup_readiness_and_liveness_probes(
    cluster: Cluster, service: str
) -> None:
    for pod in cluster.pods[service]:
        container = pod.container_spec
        assert cluster.startup_attempts[pod.pod] <= container["startupProbe"]["failureThreshold"]
        assert probe_once(container["readinessProbe"], pod.host_ports) is None
        assert probe_once(container["livenessProbe"], pod.host_ports) is None
        inspected = cluster.kube.podman.inspect(pod.container)
        assert inspected["State"]["Status"] == "running"
        assert inspected["RestartCount"] == 0
        health = httpx.get(f"{pod.url()}/health", timeout=5).json()
        assert health["status"] == "ok", health


def test_the_probes_fail_where_the_kubelet_would_see_a_failure(cluster: Cluster) -> None:
    pod = cluster.pods["fetch"][0]
    readiness = {**pod.container_spec["readinessProbe"], "httpGet": {"path": "/no-such-path", "port": "mcp"}}
    assert probe_once(readiness, pod.host_ports) == "GET /no-such-path answered 401"
    closed = {"tcpSocket": {"port": "closed"}, "timeoutSeconds": 2}
    failure = probe_once(closed, {"closed": free_port()})
    assert failure is not None and failure.startswith("TCP connect to port closed")


# --- the security context holds ------------------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_every_pod_runs_as_uid_10001_without_capabilities_or_new_privileges_on_a_read_only_root(
    cluster: Cluster, service: str
) -> None:
    for pod in cluster.pods[service]:
        probe = cluster.kube.podman.exec_python(
            pod.container,
            "import errno, os\n"
            "status = dict(line.split(':', 1) for line in open('/proc/self/status'))\n"
            "try:\n    open('/app/probe', 'w')\n    root = 'writable'\n"
            "except OSError as exc:\n    root = errno.errorcode[exc.errno]\n"
            "open('/tmp/probe', 'w').write('ok')\n"
            "print(os.getuid(), os.getgid(), status['CapEff'].strip(), status['CapBnd'].strip(),"
            " status['NoNewPrivs'].strip(), status['Seccomp'].strip(), root)\n",
        )
        assert probe.returncode == 0, probe.stderr
        # uid gid, no effective nor bounding capability, no_new_privs, a seccomp filter, read-only root.
        assert probe.stdout.split() == ["10001", "10001", "0" * 16, "0" * 16, "1", "2", "EROFS"]
        inspected = cluster.kube.podman.inspect(pod.container)
        host = inspected["HostConfig"]
        assert inspected["Config"]["User"] == "10001:10001"
        assert host["ReadonlyRootfs"] is True
        assert host["Privileged"] is False
        assert host["CapAdd"] == []
        assert "no-new-privileges" in host["SecurityOpt"]
        limits = pod.container_spec["resources"]["limits"]
        assert host["Memory"] == _quantity(limits["memory"])
        assert host["NanoCpus"] == _quantity(limits["cpu"]) * 1e9


# --- ConfigMap settings and Secret tokens reach the services ---------------------------------------------


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_the_secret_tokens_guard_mcp_while_health_stays_open(cluster: Cluster, service: str) -> None:
    pod = cluster.pods[service][0]
    assert _mcp(pod.url(), TOOLS_LIST, token=None).status_code == 401
    assert _mcp(pod.url(), TOOLS_LIST, token="not-the-token").status_code == 401
    answer = _mcp(pod.url(), TOOLS_LIST)
    assert answer.status_code == 200, answer.text
    assert answer.json()["result"]["tools"]
    assert httpx.get(f"{pod.url()}/health", timeout=5).status_code == 200


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_the_common_configmap_body_limit_reaches_every_service(cluster: Cluster, service: str) -> None:
    pod = cluster.pods[service][0]
    padded = {**TOOLS_LIST, "params": {"_meta": {"padding": "x" * BODY_LIMIT}}}
    refused = _mcp(pod.url(), padded)
    assert refused.status_code == 413, refused.text
    assert "MCP_MAX_BODY_BYTES" in refused.text
    assert _mcp(pod.url(), TOOLS_LIST).status_code == 200


def test_postgres_reaches_the_database_from_its_secret_and_caps_rows_by_its_configmap(
    cluster: Cluster,
) -> None:
    for pod in cluster.pods["postgres"]:
        answer = _mcp(pod.url(), _tool_call("execute_sql", {"query": "SELECT name FROM fruit ORDER BY id"}))
        result = answer.json()["result"]
        assert not result.get("isError"), result
        rows = result["structuredContent"]["rows"]
        assert [row["name"] if isinstance(row, dict) else row[0] for row in rows] == ["apple", "pear"]
        assert result["structuredContent"]["truncated"] is True


def test_filesystem_writes_its_shared_volume_and_not_the_read_only_workspace(cluster: Cluster) -> None:
    pod = cluster.pods["filesystem"][0]
    written = _mcp(pod.url(), _tool_call("write_file", {"path": "/shared/note.txt", "content": "hi\n"}))
    assert not written.json()["result"].get("isError"), written.text
    read = _mcp(pod.url(), _tool_call("read_file", {"path": "/shared/note.txt"}))
    assert "hi" in json.dumps(read.json()["result"])
    refused = _mcp(pod.url(), _tool_call("write_file", {"path": "/workspace/nope.txt", "content": "x"}))
    assert refused.json()["result"]["isError"] is True


# --- helm test --------------------------------------------------------------------------------------------


def _run_helm_test(cluster: Cluster, addresses: dict[str, str]) -> tuple[int, str]:
    (test_pod,) = cluster.rendering.of_kind("Pod")
    container = cluster.kube.play_pod(test_pod, addresses)
    state = cluster.kube.wait_exited(container, timeout=120)
    return int(state["ExitCode"]), cluster.kube.logs(container)


def _service_addresses(cluster: Cluster) -> dict[str, str]:
    """Each Service's DNS name -> the IP of its first pod (what the Service would route to)."""
    return {
        f"{PREFIX}-{service}.{NAMESPACE}.svc": cluster.kube.address(pods[0].pod)
        for service, pods in cluster.pods.items()
    }


def test_the_helm_test_pod_command_passes_against_the_running_pods(cluster: Cluster) -> None:
    exit_code, output = _run_helm_test(cluster, _service_addresses(cluster))
    assert exit_code == 0, output
    for service in SERVICE_NAMES:
        assert f"http://{PREFIX}-{service}.{NAMESPACE}.svc:" in output
    assert output.count("/health 200 ") == len(SERVICE_NAMES), output
    assert "FAILED" not in output


def test_the_helm_test_pod_command_fails_when_a_service_does_not_answer(cluster: Cluster) -> None:
    addresses = _service_addresses(cluster)
    # The database container listens on 5432 only: the postgres Service name now leads nowhere.
    db_ip = cluster.kube.podman.inspect(DB)["NetworkSettings"]["Networks"][NETWORK]["IPAddress"]
    addresses[f"{PREFIX}-postgres.{NAMESPACE}.svc"] = db_ip
    exit_code, output = _run_helm_test(cluster, addresses)
    assert exit_code == 1, output
    assert f"http://{PREFIX}-postgres.{NAMESPACE}.svc:8001/health FAILED:" in output
    assert output.count("/health 200 ") == len(SERVICE_NAMES) - 1, output


# --- a rolling restart under load -------------------------------------------------------------------------


@dataclass
class Call:
    worker: str
    started: float
    ended: float
    error: str | None


def _call_error(response: httpx.Response) -> str | None:
    if response.status_code != 200:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    body = response.json()
    if "error" in body:
        return f"JSON-RPC error {body['error']}"
    if body["result"].get("isError"):
        return f"tool error {body['result']['content']}"
    return None


async def _caller(url: str, worker: str, keep_alive: bool, stop: asyncio.Event, calls: list[Call]) -> None:
    """One client calling execute_sql over /mcp until told to stop: on one kept-alive connection, or on a
    new connection per call (a fresh client each time)."""
    headers = {"Authorization": f"Bearer {TOKEN}", "Accept": "application/json, text/event-stream"}
    async with httpx.AsyncClient(timeout=30, headers=headers) as kept:
        call_id = 0
        while not stop.is_set() and len(calls) < MAX_CALLS:
            call_id += 1
            message = _tool_call("execute_sql", {"query": SLOW_QUERY}, call_id)
            started = time.monotonic()
            error: str | None
            try:
                if keep_alive:
                    response = await kept.post(f"{url}/mcp", json=message)
                else:
                    async with httpx.AsyncClient(timeout=30, headers=headers) as fresh:
                        response = await fresh.post(f"{url}/mcp", json=message)
                error = _call_error(response)
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc!r}"
            calls.append(Call(worker, started, time.monotonic(), error))
            await asyncio.sleep(THINK_S)


@dataclass
class Rollout:
    terminations: list[Termination] = field(default_factory=list)
    windows: list[tuple[float, float]] = field(default_factory=list)
    new_pods: list[PlayedPod] = field(default_factory=list)


def _rolling_restart(cluster: Cluster, proxy: Haproxy, rollout: Rollout) -> None:
    """maxSurge 1, maxUnavailable 0: a new pod must be ready before an old one is deleted."""
    deployment = cluster.deployment(ROLLED)
    config_maps = cluster.rendering.of_kind("ConfigMap")
    old_pods = cluster.pods[ROLLED]
    for index, old in enumerate(old_pods):
        new = cluster.kube.play_deployment(deployment, f"new{index}", config_maps)
        wait_for_probe(new.container_spec["startupProbe"], new.host_ports)
        wait_for_probe(new.container_spec["readinessProbe"], new.host_ports)
        proxy.add_ready(len(old_pods) + index + 1, new.host_ports["mcp"])
        rollout.new_pods.append(new)
        deleted = time.monotonic()
        leave_endpoints = threading.Timer(ENDPOINT_LAG_S, proxy.remove, [index + 1])
        leave_endpoints.start()
        try:
            rollout.terminations.append(cluster.kube.terminate(old))
        finally:
            leave_endpoints.join()
        rollout.windows.append((deleted, time.monotonic()))
        time.sleep(1)  # the next replacement starts once the Deployment controller has seen this one go


async def test_a_rolling_restart_of_two_replicas_under_load_loses_no_call(
    cluster: Cluster, tmp_path: Path
) -> None:
    old_pods = cluster.pods[ROLLED]
    container = old_pods[0].container_spec
    with Haproxy.running(tmp_path, container["readinessProbe"]) as proxy:
        for slot, pod in enumerate(old_pods, start=1):
            proxy.add_ready(slot, pod.host_ports["mcp"])
        calls: list[Call] = []
        stop = asyncio.Event()
        workers = [
            asyncio.create_task(_caller(proxy.url, f"kept-{n}", True, stop, calls))
            for n in range(KEEP_ALIVE_WORKERS)
        ] + [
            asyncio.create_task(_caller(proxy.url, f"fresh-{n}", False, stop, calls))
            for n in range(FRESH_CONNECTION_WORKERS)
        ]
        rollout = Rollout()
        try:
            await asyncio.sleep(1)
            await asyncio.to_thread(_rolling_restart, cluster, proxy, rollout)
            await asyncio.sleep(1)
        finally:
            stop.set()
            await asyncio.gather(*workers)
            cluster.pods[ROLLED] = rollout.new_pods or old_pods
        stats = proxy.stats()

    failures = [call for call in calls if call.error]
    assert failures == [], f"{len(failures)} of {len(calls)} calls failed: {failures[:5]}"
    assert len(calls) >= 100, f"only {len(calls)} calls ran during the rollout"
    assert len(rollout.terminations) == len(old_pods)
    grace = cluster.deployment(ROLLED)["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    for termination in rollout.terminations:
        # Exit 0 after SIGTERM: drained, not killed (137) when the grace period ran out.
        assert termination.exit_code == 0, termination
        assert termination.seconds < grace, termination
        assert termination.sigterm_after_s >= container["lifecycle"]["preStop"]["sleep"]["seconds"]
    for started, ended in rollout.windows:
        during = [call for call in calls if started <= call.started and call.ended <= ended]
        assert len(during) >= 10, f"only {len(during)} calls ran while a pod was terminating"
    # Every old and new pod carried connections (stot: sessions a server took).
    assert all(int(stats[f"pod{slot}"]["stot"]) > 0 for slot in range(1, 5)), stats
