"""The chart's rendered pods under ``podman kube play``, probed the way the kubelet probes them, with haproxy
standing in for the Service in front of them.

podman 4.3 (Debian 12) runs Deployments, ConfigMaps and Secrets, but not quite as a cluster does; each
transformation below exists for one such difference and changes nothing the services see:

* **Secrets** become podman secrets holding a JSON map of key -> base64 value. kube play stores a Secret
  document as YAML and then reads it back as exactly that JSON map, so a played Secret can never be used
  (``secret ... is not valid JSON``); ``stringData`` is encoded the way the API server stores it.
* **Ports**: every ``containerPort`` gets a ``hostPort`` on 127.0.0.1 (a free port). Without one, podman
  4.3 publishes each containerPort on 0.0.0.0 with the same number, so two pods of one service collide
  and the services would listen beyond loopback.
* **One pod per played Deployment**, named ``<deployment>-<suffix>`` with ``replicas: 1``: replica N of a
  played Deployment is pod ``<name>-pod-N`` with the same host ports, so each replica is played alone.
* **emptyDir volumes** are renamed ``<pod>-<volume>``: podman makes a volume named after the pod spec's
  volume (``tmp``), which pods with the same spec would share; an emptyDir belongs to one pod.
* **The helm test pod** gets ``hostAliases`` mapping each Service name (``<svc>.<namespace>.svc``) to the
  pod behind it: there is no cluster DNS and no Service IP. Its checkov suppression annotations are left
  out: podman 4.3 refuses a bare Pod whose annotation values exceed 63 characters (a limit Kubernetes
  puts on label values, not on annotations).

What kube play ignores, and this module therefore does itself: probes (podman turns a liveness probe into
a healthcheck that nothing runs here, as there is no systemd, and whose command it builds wrongly for a
named port: ``nc -z -v '' 0``), ``lifecycle.preStop`` and ``terminationGracePeriodSeconds`` (podman
stops with SIGTERM and its own 10 s), Services, NetworkPolicies, ServiceAccounts and topology spread.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.deploy.conftest import Podman
from tests.support.servers import free_port

# What a kubelet uses when a probe leaves a field out.
PROBE_DEFAULTS = {"periodSeconds": 10, "timeoutSeconds": 1, "failureThreshold": 3, "successThreshold": 1}
DEFAULT_GRACE_S = 30
# podman 4.3 applies the label-value limit to a bare Pod's annotations.
MAX_POD_ANNOTATION_CHARS = 63
# The kubelet gives a container at least this long after SIGTERM, even when preStop used up the grace.
MIN_SIGTERM_GRACE_S = 2


def podman_secret_payload(secret: Mapping[str, Any]) -> str:
    """A Secret's keys as podman 4.3's kube play reads a podman secret: {"KEY": "<base64 value>"}."""
    data = dict(secret.get("data") or {})
    for key, value in (secret.get("stringData") or {}).items():
        data[key] = base64.b64encode(str(value).encode()).decode()
    return json.dumps(data)


def _rename_empty_dirs(spec: dict[str, Any], prefix: str) -> list[str]:
    """Prefix every emptyDir volume (and its mounts) with ``prefix``; returns the new volume names."""
    renamed = {
        volume["name"]: f"{prefix}-{volume['name']}"
        for volume in spec.get("volumes", [])
        if "emptyDir" in volume
    }
    for volume in spec.get("volumes", []):
        volume["name"] = renamed.get(volume["name"], volume["name"])
    for container in spec["containers"]:
        for mount in container.get("volumeMounts", []):
            mount["name"] = renamed.get(mount["name"], mount["name"])
    return list(renamed.values())


def single_pod_deployment(
    deployment: Mapping[str, Any], suffix: str
) -> tuple[dict[str, Any], dict[str, int], list[str]]:
    """The Deployment as kube play should run one of its pods: (manifest, container port -> host port,
    emptyDir volume names). Only names, replicas and hostPort/hostIP change."""
    played = copy.deepcopy(dict(deployment))
    name = f"{played['metadata']['name']}-{suffix}"
    played["metadata"]["name"] = name
    played["spec"]["replicas"] = 1
    spec = played["spec"]["template"]["spec"]
    host_ports: dict[str, int] = {}
    for container in spec["containers"]:
        for port in container.get("ports", []):
            port["hostPort"] = free_port()
            port["hostIP"] = "127.0.0.1"
            host_ports[port["name"]] = host_ports[str(port["containerPort"])] = port["hostPort"]
    volumes = _rename_empty_dirs(spec, name)
    return played, host_ports, volumes


def pod_with_service_names(
    pod: Mapping[str, Any], addresses: Mapping[str, str]
) -> tuple[dict[str, Any], list[str]]:
    """A bare Pod (the helm test) with ``hostAliases`` for the Service names it calls, its emptyDir
    volumes renamed and its long annotations left out; returns (manifest, volume names)."""
    played = copy.deepcopy(dict(pod))
    metadata = played["metadata"]
    metadata["annotations"] = {
        key: value
        for key, value in metadata.get("annotations", {}).items()
        if len(value) <= MAX_POD_ANNOTATION_CHARS
    }
    spec = played["spec"]
    spec["hostAliases"] = [{"ip": ip, "hostnames": [hostname]} for hostname, ip in sorted(addresses.items())]
    volumes = _rename_empty_dirs(spec, played["metadata"]["name"])
    return played, volumes


# --- probes, the kubelet's way --------------------------------------------------------------------------


def probe_once(probe: Mapping[str, Any], host_ports: Mapping[str, int]) -> str | None:
    """Run a probe once against the pod's published ports; None on success, else why it failed.

    httpGet succeeds on a status from 200 to 399 within timeoutSeconds; tcpSocket when the connection
    opens; exec probes are not used by the chart."""
    timeout = float(probe.get("timeoutSeconds", PROBE_DEFAULTS["timeoutSeconds"]))
    if "httpGet" in probe:
        action = probe["httpGet"]
        port = host_ports[str(action["port"])]
        url = f"http://127.0.0.1:{port}{action.get('path', '/')}"
        try:
            status = httpx.get(url, timeout=timeout).status_code
        except httpx.HTTPError as exc:
            return f"GET {action.get('path', '/')}: {type(exc).__name__}: {exc}"
        return None if 200 <= status < 400 else f"GET {action.get('path', '/')} answered {status}"
    if "tcpSocket" in probe:
        port = host_ports[str(probe["tcpSocket"]["port"])]
        try:
            socket.create_connection(("127.0.0.1", port), timeout=timeout).close()
        except OSError as exc:
            return f"TCP connect to port {probe['tcpSocket']['port']}: {exc}"
        return None
    raise ValueError(f"unsupported probe {dict(probe)}")


def wait_for_probe(probe: Mapping[str, Any], host_ports: Mapping[str, int]) -> int:
    """Probe every periodSeconds until it succeeds; fail after failureThreshold failures (when the
    kubelet would restart the container or keep it unready). Returns the attempts it took."""
    period = float(probe.get("periodSeconds", PROBE_DEFAULTS["periodSeconds"]))
    threshold = int(probe.get("failureThreshold", PROBE_DEFAULTS["failureThreshold"]))
    failure: str | None = None
    for attempt in range(1, threshold + 1):
        started = time.monotonic()
        failure = probe_once(probe, host_ports)
        if failure is None:
            return attempt
        time.sleep(max(0.0, period - (time.monotonic() - started)))
    raise AssertionError(f"probe failed {threshold} times (periodSeconds {period}): {failure}")


# --- pods -------------------------------------------------------------------------------------------------


@dataclass
class PlayedPod:
    """One pod of a Deployment, played alone."""

    deployment: dict[str, Any]
    pod: str
    container: str
    host_ports: dict[str, int]

    @property
    def spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = self.deployment["spec"]["template"]["spec"]
        return spec

    @property
    def container_spec(self) -> dict[str, Any]:
        (only,) = self.spec["containers"]
        container: dict[str, Any] = only
        return container

    def url(self, port: str = "mcp") -> str:
        return f"http://127.0.0.1:{self.host_ports[port]}"


@dataclass
class Termination:
    """How a pod ended: its exit code and the seconds from deletion (preStop start) to exit."""

    exit_code: int
    seconds: float
    sigterm_after_s: float


@dataclass
class KubePlay:
    """Plays manifests on one podman network and removes, by name, everything it created."""

    podman: Podman
    workdir: Path
    network: str
    pods: list[str] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)

    def create_secret(self, secret: Mapping[str, Any]) -> None:
        name = secret["metadata"]["name"]
        self.podman.run("secret", "rm", name, check=False)
        self.secrets.append(name)
        self.podman.run("secret", "create", name, "-", input_text=podman_secret_payload(secret))

    def _play(self, manifests: list[dict[str, Any]], label: str) -> None:
        path = self.workdir / f"{label}.yaml"
        path.write_text(yaml.safe_dump_all(manifests, sort_keys=False), encoding="utf-8")
        self.podman.run("kube", "play", "--network", self.network, str(path), timeout=180)

    def play_deployment(
        self, deployment: Mapping[str, Any], suffix: str, config_maps: list[dict[str, Any]]
    ) -> PlayedPod:
        """One pod of ``deployment``, its ConfigMaps played beside it (kube play reads them from the file)."""
        played, host_ports, volumes = single_pod_deployment(deployment, suffix)
        name = played["metadata"]["name"]
        pod = f"{name}-pod-0"
        self._remove_pod(pod, volumes)
        self.pods.append(pod)
        self.volumes.extend(volumes)
        self._play([*config_maps, played], name)
        (container,) = played["spec"]["template"]["spec"]["containers"]
        return PlayedPod(played, pod, f"{pod}-{container['name']}", host_ports)

    def play_pod(self, pod: Mapping[str, Any], addresses: Mapping[str, str]) -> str:
        """A bare Pod with Service names resolved to ``addresses``; returns its container's name."""
        played, volumes = pod_with_service_names(pod, addresses)
        name = played["metadata"]["name"]
        self._remove_pod(name, volumes)
        self.pods.append(name)
        self.volumes.extend(volumes)
        self._play([played], name)
        (container,) = played["spec"]["containers"]
        return f"{name}-{container['name']}"

    def address(self, pod: str) -> str:
        """The pod's IP on the network (what a Service's endpoints hold)."""
        infra = self.podman.run("pod", "inspect", pod, "--format", "{{.InfraContainerID}}").stdout.strip()
        networks = self.podman.inspect(infra)["NetworkSettings"]["Networks"]
        address: str = networks[self.network]["IPAddress"]
        return address

    def wait_exited(self, container: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            state: dict[str, Any] = self.podman.inspect(container)["State"]
            if state["Status"] in ("exited", "stopped"):
                return state
            assert time.monotonic() < deadline, f"{container} still {state['Status']} after {timeout} s"
            time.sleep(0.5)

    def terminate(self, pod: PlayedPod) -> Termination:
        """Delete a pod as the kubelet does: run the preStop sleep, send SIGTERM, SIGKILL once
        terminationGracePeriodSeconds (counted from the start of preStop) has run out."""
        started = time.monotonic()
        grace = float(pod.spec.get("terminationGracePeriodSeconds", DEFAULT_GRACE_S))
        pre_stop = pod.container_spec.get("lifecycle", {}).get("preStop", {})
        assert set(pre_stop) <= {"sleep"}, f"only preStop.sleep is emulated, the chart has {pre_stop}"
        time.sleep(float(pre_stop.get("sleep", {}).get("seconds", 0)))
        sigterm_after = time.monotonic() - started
        remaining = max(MIN_SIGTERM_GRACE_S, round(grace - sigterm_after))
        self.podman.run("stop", "--time", str(remaining), pod.container, timeout=remaining + 60)
        state = self.podman.inspect(pod.container)["State"]
        seconds = time.monotonic() - started
        self._remove_pod(pod.pod)
        return Termination(int(state["ExitCode"]), seconds, sigterm_after)

    def logs(self, container: str) -> str:
        result = self.podman.run("logs", container, check=False)
        return result.stdout + result.stderr

    def _remove_pod(self, pod: str, volumes: list[str] | None = None) -> None:
        """Remove a pod (and, when given, its volumes: a run killed half-way leaves both behind)."""
        self.podman.run("pod", "rm", "--force", "--time", "0", pod, check=False, timeout=120)
        for volume in volumes or []:
            self.podman.run("volume", "rm", "--force", volume, check=False)

    def close(self) -> None:
        for pod in reversed(self.pods):
            self._remove_pod(pod)
        for volume in self.volumes:
            self.podman.run("volume", "rm", "--force", volume, check=False)
        for secret in self.secrets:
            self.podman.run("secret", "rm", secret, check=False)


# --- haproxy as the Service -------------------------------------------------------------------------------


@dataclass
class Haproxy:
    """haproxy in TCP mode on 127.0.0.1: a connection goes to one ready pod and stays there, like a
    ClusterIP Service through kube-proxy; ``retries 0``, so a refused connection reaches the client."""

    process: subprocess.Popen[bytes]
    admin_socket: Path
    port: int
    slots: int

    @classmethod
    @contextlib.contextmanager
    def running(cls, workdir: Path, readiness: Mapping[str, Any], slots: int = 4) -> Iterator[Haproxy]:
        """haproxy whose health check is the pod's readinessProbe (path, period, timeout, thresholds)."""
        probe = {**PROBE_DEFAULTS, **readiness}
        admin_socket = workdir / "haproxy.sock"
        port = free_port()
        config = workdir / "haproxy.cfg"
        config.write_text(
            "global\n"
            f"  stats socket {admin_socket} mode 600 level admin\n"
            "defaults\n"
            "  mode tcp\n"
            "  retries 0\n"
            "  timeout connect 5s\n"
            "  timeout client 120s\n"
            "  timeout server 120s\n"
            f"  timeout check {probe['timeoutSeconds']}s\n"
            "frontend service\n"
            f"  bind 127.0.0.1:{port}\n"
            "  default_backend pods\n"
            "backend pods\n"
            "  balance roundrobin\n"
            f"  option httpchk GET {probe['httpGet']['path']}\n"
            f"  default-server check inter {probe['periodSeconds']}s fall {probe['failureThreshold']}"
            f" rise {probe['successThreshold']}\n"
            f"  server-template pod 1-{slots} 127.0.0.1:9 disabled\n",
            encoding="utf-8",
        )
        subprocess.run(["haproxy", "-c", "-q", "-f", str(config)], check=True, timeout=30)
        process = subprocess.Popen(
            ["haproxy", "-db", "-f", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        proxy = cls(process, admin_socket, port, slots)
        try:
            deadline = time.monotonic() + 20
            while not admin_socket.exists():
                assert process.poll() is None, f"haproxy exited {process.returncode}"
                assert time.monotonic() < deadline, "haproxy did not open its admin socket"
                time.sleep(0.05)
            yield proxy
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def admin(self, command: str) -> str:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(10)
            sock.connect(str(self.admin_socket))
            sock.sendall(command.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def add_ready(self, slot: int, port: int) -> None:
        """The endpoint of a pod the readiness probe just passed: it takes new connections now."""
        server = f"pods/pod{slot}"
        self.admin(f"set server {server} addr 127.0.0.1 port {port}")
        self.admin(f"set server {server} state ready")
        self.admin(f"set server {server} health up")

    def remove(self, slot: int) -> None:
        """A terminating pod leaves the endpoints: no new connections, existing ones carry on."""
        self.admin(f"set server pods/pod{slot} state maint")

    def stats(self) -> dict[str, dict[str, str]]:
        """``show stat`` of the pod slots: name -> columns (status, stot = connections served, ...)."""
        lines = self.admin("show stat").lstrip("# ").splitlines()
        header = lines[0].split(",")
        rows = [dict(zip(header, line.split(","), strict=False)) for line in lines[1:] if line]
        return {row["svname"]: row for row in rows if row["pxname"] == "pods" and row["svname"] != "BACKEND"}
