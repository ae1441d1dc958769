"""Fixtures of the container tier: podman, its Docker-compatible socket, the images, one deployment.

scripts/setup.d/50-containers.sh prepares the machine (podman settings, the local python:3.12 base
images, ./wheels). Nothing here is autouse: the chart and drift tests in this folder never start podman.
The deployment uses the real container names (mcp-fetch ...) and networks (litellm-net, postgres-net),
so it replaces any mcp-sse containers already running on this host.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from fleet.registry import load_registry
from tests.support.servers import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
PODMAN_CONF = REPO_ROOT / ".tools" / "podman" / "containers.conf"
BASE_IMAGES = ("docker.io/library/python:3.12-slim", "docker.io/library/python:3.12")
TEST_DB_IMAGE = "mcp-sse-test/postgres:15"
TEST_DB = "mcp-sse-test-db"
TEST_WEB = "mcp-sse-test-web"
NETWORKS = ("litellm-net", "postgres-net")
# The group that owns the podman socket in the test, added to mcp-monitoring (like Docker's "docker").
SOCKET_GID = 10999
DB_PASSWORD = "mcp-test-only"


def _run(
    args: Sequence[str],
    env: dict[str, str],
    *,
    timeout: float = 120,
    check: bool = True,
    input_text: str | None = None,
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        list(args),
        env=env,
        cwd=REPO_ROOT,
        input=input_text,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} exited {result.returncode}\n"
            f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        )
    return result


@dataclass
class Podman:
    """podman on this machine and its Docker API socket (what docker-compose and the docker CLI talk to)."""

    env: dict[str, str]
    socket: Path

    def run(
        self, *args: str, timeout: float = 120, check: bool = True, input_text: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return _run(["podman", *args], self.env, timeout=timeout, check=check, input_text=input_text)

    def inspect(self, name: str) -> dict[str, Any]:
        data: list[dict[str, Any]] = json.loads(self.run("inspect", name).stdout)
        return data[0]

    def exec_python(self, container: str, code: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return self.run("exec", container, "python", "-c", code, timeout=timeout, check=False)


@pytest.fixture(scope="session")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Podman]:
    """podman with the settings this VM needs, and ``podman system service`` on a private socket."""
    if shutil.which("podman") is None or not PODMAN_CONF.is_file():
        pytest.fail(
            "podman is not prepared: run scripts/bootstrap.sh test (scripts/setup.d/50-containers.sh)"
        )
    env = {**os.environ, "CONTAINERS_CONF": str(PODMAN_CONF)}
    for image in BASE_IMAGES:
        if _run(["podman", "image", "exists", image], env, check=False).returncode != 0:
            pytest.fail(f"{image} is missing: run scripts/setup.d/50-containers.sh")
    socket = tmp_path_factory.mktemp("podman") / "podman.sock"
    service = subprocess.Popen(
        ["podman", "system", "service", "--time=0", f"unix://{socket}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not socket.exists():
            if service.poll() is not None or time.monotonic() > deadline:
                pytest.fail("podman system service did not create its socket")
            time.sleep(0.1)
        os.chown(socket, 0, SOCKET_GID)
        socket.chmod(0o660)
        yield Podman(env={**env, "DOCKER_HOST": f"unix://{socket}"}, socket=socket)
    finally:
        service.terminate()
        try:
            service.wait(timeout=20)
        except subprocess.TimeoutExpired:
            service.kill()
            service.wait()


@dataclass(frozen=True)
class BuiltImage:
    tag: str
    seconds: int
    megabytes: int


@pytest.fixture(scope="session")
def built_images(podman: Podman) -> dict[str, BuiltImage]:
    """Every image, built from the repository's Dockerfile by scripts/build_images.sh --offline."""
    env = {**podman.env, "CONTAINER_ENGINE": "podman"}
    result = _run(["scripts/build_images.sh", "--offline"], env, timeout=1200)
    images: dict[str, BuiltImage] = {}
    for line in result.stdout.splitlines():
        match = re.fullmatch(r"mcp-sse/(\S+):\S+\s+(\d+)s\s+(\d+) MB", line.strip())
        if match:
            images[match[1]] = BuiltImage(line.split()[0], int(match[2]), int(match[3]))
    podman.run(
        "build",
        "--format",
        "docker",
        "-q",
        "-t",
        TEST_DB_IMAGE,
        "-f",
        str(REPO_ROOT / "tests/deploy/containers/testdb.Dockerfile"),
        str(REPO_ROOT / "tests/deploy/containers"),
        timeout=900,
    )
    return images


@dataclass
class Deployment:
    """docker-compose.yml started by ./deploy.sh against podman, with stand-ins on both networks."""

    podman: Podman
    env: dict[str, str]
    ports: dict[str, int]
    workspace: Path
    shared: Path
    up_output: str = ""
    missing_networks_attempt: subprocess.CompletedProcess[str] | None = None
    created_networks: list[str] = field(default_factory=list)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def deploy(
        self, *args: str, timeout: float = 600, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return _run(["./deploy.sh", *args], self.env, timeout=timeout, check=check)

    def health(self, name: str) -> int | None:
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(f"{self.url(name)}/health", timeout=3).status_code
        return None


def _remove_leftovers(podman: Podman) -> None:
    _run(["scripts/cleanup.sh"], {**podman.env, "CONTAINER_ENGINE": "podman"}, timeout=120)
    podman.run("rm", "--force", "--time", "0", TEST_DB, TEST_WEB, check=False)


@pytest.fixture(scope="session")
def deployment(
    podman: Podman, built_images: dict[str, BuiltImage], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """The five services up under docker-compose (through podman's socket), healthy, torn down after."""
    registry = load_registry()
    root = tmp_path_factory.mktemp("deployment")
    workspace, shared = root / "workspace", root / "shared"
    workspace.mkdir()
    shared.mkdir()
    (workspace / "hello.txt").write_text("hello from the host\n", encoding="utf-8")
    os.chown(shared, 10001, 10001)
    env_file = root / "sse.env"
    env_file.write_text(
        f"DATABASE_URL=postgresql://mcp:{DB_PASSWORD}@{TEST_DB}:5432/demo\n"
        f"FETCH_ALLOWED_HOSTS={TEST_WEB}\n"
        f"GITHUB_API_URL=http://{TEST_WEB}:8081\n",
        encoding="utf-8",
    )
    ports = {name: free_port() for name in registry.services}
    env = {
        **podman.env,
        "DEPLOY_ENV_FILE": str(env_file),
        "DEPLOY_WORKSPACE_DIR": str(workspace),
        "DEPLOY_SHARED_DIR": str(shared),
        "DEPLOY_DOCKER_SOCKET": str(podman.socket),
        "DEPLOY_DOCKER_GID": str(SOCKET_GID),
        "DEPLOY_WAIT_S": "180",
        **{f"DEPLOY_PORT_{name.upper()}": str(port) for name, port in ports.items()},
    }
    deployment = Deployment(podman, env, ports, workspace, shared)
    _remove_leftovers(podman)
    existing = {
        name for name in NETWORKS if podman.run("network", "exists", name, check=False).returncode == 0
    }
    try:
        if not existing:
            deployment.missing_networks_attempt = deployment.deploy("up", check=False)
        deployment.deploy("networks", "--create")
        deployment.created_networks = [name for name in NETWORKS if name not in existing]
        podman.run("run", "-d", "--name", TEST_DB, "--network", "postgres-net", TEST_DB_IMAGE)
        podman.run(
            "run",
            "-d",
            "--name",
            TEST_WEB,
            "--network",
            "litellm-net",
            "--no-healthcheck",
            "-v",
            f"{REPO_ROOT / 'tests'}:/stub/tests:ro",
            "-v",
            f"{REPO_ROOT / 'harness'}:/stub/harness:ro",  # the GitHub stand-in
            "-e",
            "PYTHONPATH=/stub",
            built_images["github"].tag,  # it has starlette and uvicorn
            "python",
            "-m",
            "tests.deploy.containers.stub_web",
        )
        deadline = time.monotonic() + 60
        while podman.run("exec", TEST_DB, "pg_isready", "-h", "127.0.0.1", "-q", check=False).returncode != 0:
            assert time.monotonic() < deadline, "the test PostgreSQL did not start"
            time.sleep(0.5)
        up = deployment.deploy("up")
        deployment.up_output = up.stdout + up.stderr
        yield deployment
    finally:
        deployment.deploy("down", check=False, timeout=180)
        podman.run("rm", "--force", "--time", "0", TEST_DB, TEST_WEB, check=False)
        _remove_leftovers(podman)
        for network in deployment.created_networks:
            podman.run("network", "rm", network, check=False)
