"""The container tier: the repository's images and docker-compose.yml, built and run for real under podman.

The images are built from the one Dockerfile (--build-arg SERVICE=<name>) with --network=none (pip
installs from ./wheels only), docker-compose drives podman through its Docker-compatible socket, and
./deploy.sh does the deployment. Stand-ins: a real PostgreSQL 15 container on postgres-net only, and a
web container on litellm-net that serves a page for mcp-fetch and the project's GitHub REST stand-in
(the real GitHub API cannot be reached from here). mcp-monitoring gets podman's socket where a Docker
host would mount /var/run/docker.sock. Tests run in file order on one deployment; the last ones restart
and stop services.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from fleet.registry import load_registry
from tests.deploy.conftest import TEST_DB, TEST_WEB, BuiltImage, Deployment, Podman

# The first test builds every image and the next ones start the deployment, inside their set-up.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

REGISTRY = load_registry()
NAMES = list(REGISTRY.services)
SIZE_BUDGET_MB = 200


def _run_deploy(
    deployment: Deployment, overrides: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["./deploy.sh", *args],
        env={**deployment.env, **overrides},
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


# Images -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_every_service_image_builds_offline_within_the_size_budget(
    built_images: dict[str, BuiltImage], name: str
) -> None:
    image = built_images[name]
    assert image.tag == f"{REGISTRY[name].image}:0.1.0"
    assert image.megabytes <= SIZE_BUDGET_MB, f"{image.tag} is {image.megabytes} MB"


@pytest.mark.parametrize("name", NAMES)
def test_images_run_the_service_as_a_fixed_non_root_user_with_healthcheck_and_stop_signal(
    podman: Podman, built_images: dict[str, BuiltImage], name: str
) -> None:
    image = json.loads(podman.run("image", "inspect", built_images[name].tag).stdout)[0]
    config = image["Config"]
    assert config["User"] == "10001:10001"
    assert config["Cmd"] == ["mcp-sse", "serve", name]
    assert set(config["ExposedPorts"]) == {f"{REGISTRY[name].port}/tcp", f"{REGISTRY[name].metrics_port}/tcp"}
    assert config["Labels"]["org.opencontainers.image.title"] == f"mcp-sse {name}"
    assert config["StopSignal"] == "SIGTERM"
    # podman shows the healthcheck beside Config (Docker inside it).
    healthcheck = image.get("Healthcheck") or config["Healthcheck"]
    assert healthcheck["Test"][:4] == [
        "CMD",
        "python",
        "/opt/mcp-sse/healthcheck.py",
        str(REGISTRY[name].port),
    ]
    assert "MCP_HOST=0.0.0.0" in config["Env"]


@pytest.mark.parametrize(
    ("build_args", "refusal"),
    [
        ([], "the build argument SERVICE is required: --build-arg SERVICE=<postgres|fetch|"),
        (["--build-arg", "SERVICE=redis"], "unknown SERVICE 'redis' (--build-arg SERVICE=...); known: "),
    ],
    ids=["missing", "unknown"],
)
def test_a_build_without_a_known_service_stops_naming_the_argument(
    podman: Podman, built_images: dict[str, BuiltImage], build_args: list[str], refusal: str
) -> None:
    # After built_images, so every step before the refusal comes from the cache (about a second).
    probe = "mcp-sse-test/no-service:latest"
    offline = ["--pull=never", "--network=none", "--build-arg", "PIP_OFFLINE=1"]
    try:
        result = podman.run("build", *offline, *build_args, "-t", probe, ".", timeout=600, check=False)
    finally:
        # The steps before the refusal stay behind as untagged images.
        podman.run("image", "prune", "--force", "--filter", "label=io.mcp-sse.stage", check=False)
    assert result.returncode != 0
    assert refusal in result.stderr
    assert podman.run("image", "exists", probe, check=False).returncode == 1


def test_images_carry_no_compiler_pip_or_package_cache(
    podman: Podman, built_images: dict[str, BuiltImage]
) -> None:
    probe = (
        "for tool in gcc cc c++ strip ld pip pip3; do command -v $tool; done; "
        "ls -d /root/.cache /tmp/* /opt/venv/bin/pip* 2>/dev/null; true"
    )
    for name in NAMES:
        found = podman.run("run", "--rm", "--entrypoint", "sh", built_images[name].tag, "-c", probe).stdout
        assert found.strip() == "", f"{name}: {found}"


def test_dockerignore_keeps_tests_venvs_and_secrets_out_of_the_build_context(podman: Podman) -> None:
    probe = "mcp-sse-test/context-probe:latest"
    try:
        result = podman.run(
            "build",
            "--no-cache",
            "--network=none",
            "-t",
            probe,
            "-f",
            "-",
            ".",
            input_text="FROM python:3.12-slim\nCOPY . /context\nRUN ls -A /context /context/scripts\n",
        )
    finally:
        podman.run("rmi", "--force", probe, check=False)
    listing = result.stdout.split()
    assert {"pyproject.toml", "libmcp", "services", "fleet", "config", "container"} <= set(listing)
    for kept_out in (".git", ".venv", ".tools", "tests", "harness", "secrets", "bench", "docs", "deploy.sh"):
        assert kept_out not in listing


# The deployment -------------------------------------------------------------------------------------


def test_deploy_up_refuses_to_start_without_the_external_networks(deployment: Deployment) -> None:
    attempt = deployment.missing_networks_attempt
    if attempt is None:
        pytest.skip("litellm-net / postgres-net existed before the test, so the refusal could not be seen")
    assert attempt.returncode != 0
    assert "external network(s) missing: litellm-net postgres-net" in attempt.stderr
    assert "--create-networks" in attempt.stderr


@pytest.mark.parametrize("name", NAMES)
def test_every_container_becomes_healthy_by_its_compose_healthcheck(
    deployment: Deployment, name: str
) -> None:
    # podman schedules healthchecks through systemd timers, and this machine has no systemd:
    # `podman healthcheck run` executes the compose-defined check in the container, as a timer would.
    container = REGISTRY[name].container
    deadline = time.monotonic() + 60
    while deployment.podman.run("healthcheck", "run", container, check=False).returncode != 0:
        assert time.monotonic() < deadline, f"{container} never passed its healthcheck"
        time.sleep(1)
    state = deployment.podman.inspect(container)["State"]
    assert state["Status"] == "running"
    assert state["Health"]["Status"] == "healthy"


async def _call(deployment: Deployment, name: str, tool: str, arguments: dict[str, Any]) -> Any:
    async with Client(f"{deployment.url(name)}/mcp", mode="legacy") as client:
        result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content[0].text if result.content else result
    return result.structured_content


async def test_postgres_queries_the_database_on_postgres_net(deployment: Deployment) -> None:
    result = await _call(
        deployment, "postgres", "execute_sql", {"query": "SELECT name FROM fruit ORDER BY id"}
    )
    assert [row["name"] if isinstance(row, dict) else row[0] for row in result["rows"]] == [
        "apple",
        "pear",
        "quince",
    ]


async def test_fetch_converts_a_page_served_on_litellm_net(deployment: Deployment) -> None:
    result = await _call(deployment, "fetch", "fetch", {"url": f"http://{TEST_WEB}:8080/"})
    assert "Hello from the stub" in json.dumps(result)


async def test_fetch_converts_a_large_page_in_a_forked_process_inside_the_container(
    deployment: Deployment,
) -> None:
    # Past 64 KiB the page is converted by a child of the fork server: under a read-only root, as UID 10001.
    result = await _call(
        deployment, "fetch", "fetch", {"url": f"http://{TEST_WEB}:8080/large", "max_length": 100_000}
    )
    text = json.dumps(result)
    assert "Paragraph 0 of the large page" in text and "Paragraph 1000 of the large page" in text
    assert "The converter stopped" not in text


async def test_filesystem_reads_workspace_and_writes_shared_on_the_host(deployment: Deployment) -> None:
    read = await _call(deployment, "filesystem", "read_file", {"path": "/workspace/hello.txt"})
    assert "hello from the host" in json.dumps(read)
    await _call(
        deployment, "filesystem", "write_file", {"path": "/shared/from-container.txt", "content": "hi\n"}
    )
    written = deployment.shared / "from-container.txt"
    assert written.read_text(encoding="utf-8") == "hi\n"
    assert written.stat().st_uid == 10001


async def test_filesystem_cannot_write_the_read_only_workspace(deployment: Deployment) -> None:
    async with Client(f"{deployment.url('filesystem')}/mcp", mode="legacy") as client:
        result = await client.call_tool("write_file", {"path": "/workspace/nope.txt", "content": "x"})
    assert result.is_error
    assert not (deployment.workspace / "nope.txt").exists()


async def test_github_reads_a_repository_from_the_api_stand_in(deployment: Deployment) -> None:
    result = await _call(deployment, "github", "get_repository", {"repo": "octo-org/hello-world"})
    assert result["full_name"] == "octo-org/hello-world"


async def test_monitoring_reads_container_logs_through_the_mounted_engine_socket(
    deployment: Deployment,
) -> None:
    result = await _call(deployment, "monitoring", "get_container_logs", {"name": "mcp-fetch", "tail": 50})
    assert "starting fetch" in json.dumps(result)


def test_deploy_status_and_test_report_every_service(deployment: Deployment) -> None:
    status = deployment.deploy("status")
    for name in NAMES:
        assert f"{REGISTRY[name].container} " in status.stdout
    assert status.stdout.count(" ok\n") >= len(NAMES)
    env_calls = {
        "DEPLOY_TEST_FETCH": f'fetch {{"url": "http://{TEST_WEB}:8080/", "max_length": 200}}',
        "DEPLOY_TEST_GITHUB": 'get_repository {"repo": "octo-org/hello-world"}',
    }
    deployment.env.update(env_calls)
    smoke = deployment.deploy("test")
    for name in NAMES:
        assert f"{REGISTRY[name].container} " in smoke.stdout
    assert "FAILED" not in smoke.stdout
    assert smoke.stdout.count(": ok:") == len(NAMES)


# Hardening ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_containers_run_unprivileged_on_a_read_only_root(deployment: Deployment, name: str) -> None:
    container = REGISTRY[name].container
    probe = deployment.podman.exec_python(
        container,
        "import errno, os\n"
        "status = dict(line.split(':', 1) for line in open('/proc/self/status'))\n"
        "try:\n    open('/app/probe', 'w')\n    root = 'writable'\n"
        "except OSError as exc:\n    root = errno.errorcode[exc.errno]\n"
        "open('/tmp/probe', 'w').write('ok')\n"
        "print(os.getuid(), os.getgid(), status['CapEff'].strip(), status['NoNewPrivs'].strip(), root)\n",
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.split() == ["10001", "10001", "0000000000000000", "1", "EROFS"]
    host_config = deployment.podman.inspect(container)["HostConfig"]
    assert host_config["ReadonlyRootfs"] is True
    assert host_config["Memory"] > 0 and host_config["NanoCpus"] > 0 and host_config["PidsLimit"] > 0
    assert host_config["RestartPolicy"]["Name"] == "unless-stopped"
    published = {port: spec for port, spec in host_config["PortBindings"].items() if spec}
    assert list(published) == [f"{REGISTRY[name].port}/tcp"]  # metrics ports stay on the networks
    assert [binding["HostIp"] for binding in published[f"{REGISTRY[name].port}/tcp"]] == ["127.0.0.1"]


@pytest.mark.parametrize("name", NAMES)
def test_only_monitoring_gets_the_engine_socket_and_read_only(deployment: Deployment, name: str) -> None:
    container = deployment.podman.inspect(REGISTRY[name].container)
    mounts = {mount["Destination"]: mount for mount in container["Mounts"]}
    if name == "monitoring":
        assert mounts["/var/run/docker.sock"]["RW"] is False
    else:
        assert "/var/run/docker.sock" not in mounts


def test_fetch_cannot_reach_a_container_that_sits_only_on_postgres_net(deployment: Deployment) -> None:
    networks = deployment.podman.inspect(TEST_DB)["NetworkSettings"]["Networks"]
    assert list(networks) == ["postgres-net"]
    database_ip = networks["postgres-net"]["IPAddress"]
    probe = (
        "import socket\n"
        f"for target in ({TEST_DB!r}, {database_ip!r}):\n"
        "    try:\n"
        "        socket.create_connection((target, 5432), timeout=3).close()\n"
        "        print(target, 'reached')\n"
        "    except OSError as exc:\n"
        "        print(target, 'refused', type(exc).__name__)\n"
    )
    from_fetch = deployment.podman.exec_python("mcp-fetch", probe)
    from_postgres = deployment.podman.exec_python("mcp-postgres", probe)
    assert from_fetch.returncode == 0 and from_postgres.returncode == 0
    assert f"{TEST_DB} refused gaierror" in from_fetch.stdout  # no name on litellm-net
    assert f"{database_ip} refused" in from_fetch.stdout  # nor a route by address
    # The same probe from mcp-postgres, which joins both networks, does reach it.
    assert from_postgres.stdout.split("\n")[:2] == [f"{TEST_DB} reached", f"{database_ip} reached"]


# Lifecycle (these change the deployment, so they come last) -------------------------------------------


def test_sigterm_drains_and_the_service_exits_cleanly(deployment: Deployment) -> None:
    podman = deployment.podman
    podman.run("stop", "--time", "15", "mcp-github", timeout=60)
    state = podman.inspect("mcp-github")["State"]
    assert state["ExitCode"] == 0  # 137 would mean the grace period ran out and it was killed
    podman.run("start", "mcp-github")
    deadline = time.monotonic() + 60
    while deployment.health("github") != 200:
        assert time.monotonic() < deadline, "mcp-github did not come back after start"
        time.sleep(0.5)


def test_a_killed_service_process_is_restarted_by_the_restart_policy(deployment: Deployment) -> None:
    podman = deployment.podman
    before = podman.inspect("mcp-filesystem")
    os.kill(before["State"]["Pid"], 9)
    deadline = time.monotonic() + 90
    while True:
        after = podman.inspect("mcp-filesystem")
        if after["RestartCount"] > before["RestartCount"] and deployment.health("filesystem") == 200:
            break
        assert time.monotonic() < deadline, f"not restarted: {after['State']}"
        time.sleep(0.5)
    assert after["State"]["Pid"] != before["State"]["Pid"]


def test_deploy_up_names_the_service_that_fails_to_start_and_shows_why(deployment: Deployment) -> None:
    env_file = Path(deployment.env["DEPLOY_ENV_FILE"])
    broken = env_file.with_name("broken.env")
    broken.write_text(env_file.read_text(encoding="utf-8") + "MCP_NOT_A_SETTING=1\n", encoding="utf-8")
    result = _run_deploy(
        deployment, {"DEPLOY_ENV_FILE": str(broken), "DEPLOY_WAIT_S": "60"}, "up", "filesystem"
    )
    assert result.returncode == 1
    assert "FAILED: mcp-filesystem:" in result.stderr
    assert "MCP_NOT_A_SETTING" in result.stderr  # the service's own start-up error, from its log
    assert "not every service became healthy" in result.stderr


def test_deploy_down_removes_every_container(deployment: Deployment) -> None:
    deployment.deploy("down", timeout=180)
    for name in NAMES:
        exists = deployment.podman.run("container", "exists", REGISTRY[name].container, check=False)
        assert exists.returncode == 1
    assert deployment.health("fetch") is None
