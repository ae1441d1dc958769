"""Static checks of the container artifacts; nothing here starts a container (that is test_containers.py).

hadolint and checkov on every Dockerfile (each suppression carries its reason), docker-compose.yml
validated by Debian's docker-compose and by the compose-spec schema, the hardening the deployment
promises read back from the resolved compose file, shellcheck on the scripts, and the in-image
healthcheck probe against a real HTTP server. Tools come from scripts/setup.d/50-containers.sh.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from fleet.registry import load_registry
from tests.support.servers import run_app

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOLS = REPO_ROOT / ".tools"
REGISTRY = load_registry()
VERSION = re.search(r'^version = "(.+)"$', (REPO_ROOT / "pyproject.toml").read_text(), re.M)[1]  # type: ignore[index]
DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERFILES = [DOCKERFILE, REPO_ROOT / "tests" / "deploy" / "containers" / "testdb.Dockerfile"]
SCRIPTS = [
    "deploy.sh",
    "scripts/build_images.sh",
    "scripts/health_check.sh",
    "scripts/test_service.sh",
    "scripts/cleanup.sh",
    "scripts/setup.d/50-containers.sh",
]
NO_NETWORK = {"HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"}


def _tool(path: Path) -> Path:
    if not path.exists():
        pytest.fail(f"{path.relative_to(REPO_ROOT)} is missing: run scripts/setup.d/50-containers.sh")
    return path


def _relative(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT))


# Dockerfiles ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=_relative)
def test_hadolint_finds_nothing(dockerfile: Path) -> None:
    hadolint = _tool(TOOLS / "hadolint" / "bin" / "hadolint")
    result = subprocess.run([hadolint, "-f", "json", dockerfile], capture_output=True, text=True, check=False)
    assert json.loads(result.stdout or "[]") == [], result.stdout


def test_checkov_fails_no_dockerfile_check_and_every_skip_says_why() -> None:
    checkov = _tool(TOOLS / "checkov" / "bin" / "checkov")
    args = [str(checkov), "--framework", "dockerfile", "--skip-download", "-o", "json"]
    for dockerfile in DOCKERFILES:
        args += ["-f", _relative(dockerfile)]
    result = subprocess.run(
        args, cwd=REPO_ROOT, env={**os.environ, **NO_NETWORK}, capture_output=True, text=True, timeout=600
    )
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = [check for entry in reports for check in entry["results"]["failed_checks"]]
    skipped = [check for entry in reports for check in entry["results"]["skipped_checks"]]
    assert [(check["check_id"], check["file_path"]) for check in failed] == []
    assert all(not entry["results"]["parsing_errors"] for entry in reports)
    assert sum(entry["summary"]["passed"] for entry in reports) > 0
    for check in skipped:
        reason = (check["check_result"].get("suppress_comment") or "").strip()
        assert len(reason) > 20, f"{check['check_id']} in {check['file_path']} is skipped without a reason"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=_relative)
def test_every_hadolint_ignore_is_explained_on_the_line_above(dockerfile: Path) -> None:
    lines = dockerfile.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines):
        if line.startswith("# hadolint ignore="):
            above = lines[number - 1] if number else ""
            assert above.startswith("# ") and "hadolint" not in above, f"{dockerfile}:{number + 1}"


def _stages() -> dict[str, str]:
    """The Dockerfile's stages by name (the unnamed last one is "image"), each its text from its FROM
    line up to the comments that introduce the next stage."""
    stages: dict[str, str] = {}
    for stage in re.split(r"^(?=FROM )", DOCKERFILE.read_text(encoding="utf-8"), flags=re.M)[1:]:
        lines = stage.splitlines()
        while not lines[-1].strip() or lines[-1].startswith("#"):
            lines.pop()
        named = re.match(r"FROM \S+ AS (\S+)$", lines[0])
        stages[named[1] if named else "image"] = "\n".join(lines) + "\n"
    return stages


def test_the_one_dockerfile_has_a_stage_for_exactly_the_registry_services() -> None:
    assert list(_stages()) == ["build", "runtime", *REGISTRY.services, "image"]
    leftovers = list(REPO_ROOT.glob("services/*/Dockerfile")) + list(REPO_ROOT.glob("Dockerfile.*"))
    assert leftovers == [], "every image is built from the root Dockerfile"


@pytest.mark.parametrize("name", list(REGISTRY.services))
def test_service_stage_serves_the_registry_ports_and_runs_its_service(name: str) -> None:
    entry = REGISTRY[name]
    stage = _stages()[name]
    assert stage.startswith(f"FROM runtime AS {name}\n")
    assert f"EXPOSE {entry.port} {entry.metrics_port}\n" in stage
    assert f'"/opt/mcp-sse/healthcheck.py", "{entry.port}"' in stage
    assert ('"--allow-degraded"' in stage) == (name == "postgres")  # its /health is 503 without a database
    assert stage.rstrip().endswith(f'CMD ["mcp-sse", "serve", "{name}"]')


def test_the_image_is_the_named_service_stage_plus_the_virtualenv_of_the_build_stage() -> None:
    stages = _stages()
    assert "FROM python:3.12 AS build\n" in stages["build"]
    assert '"/src[$extra]"' in stages["build"]
    assert 'service_extra.py config/services.yaml "${SERVICE-}"' in stages["build"]
    assert stages["image"].startswith("FROM ${SERVICE}\nARG SERVICE\n")
    assert "COPY --from=build /opt/venv /opt/venv\n" in stages["image"]


def test_build_stage_copies_every_package_the_wheel_holds() -> None:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    packages = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    dockerignore = (REPO_ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    build = _stages()["build"]
    for package in packages:
        assert f"COPY {package}/ {package}/\n" in build, f"the Dockerfile does not copy {package}/"
        assert f"!{package}/" in dockerignore, f".dockerignore keeps {package}/ out of the build context"


def test_runtime_stage_is_python_slim_with_a_fixed_non_root_user() -> None:
    stage = _stages()["runtime"]
    assert stage.startswith("FROM python:3.12-slim AS runtime\n")
    assert "useradd --no-log-init --uid 10001 --gid 10001" in stage
    assert "USER 10001:10001" in stage
    assert "STOPSIGNAL SIGTERM" in stage
    assert "MCP_HOST=0.0.0.0" in stage
    assert "SERVICE" not in stage  # so the five images share its layers


def _service_extra(*args: str) -> subprocess.CompletedProcess[str]:
    script = REPO_ROOT / "scripts" / "container" / "service_extra.py"
    return subprocess.run(
        [sys.executable, script, "config/services.yaml", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize("name", list(REGISTRY.services))
def test_build_step_installs_the_extra_the_registry_names(name: str) -> None:
    result = _service_extra(name)
    assert (result.returncode, result.stdout) == (0, f"{REGISTRY[name].extra}\n")


def test_build_step_refuses_a_missing_or_unknown_service_naming_the_argument() -> None:
    missing = _service_extra("")
    assert missing.returncode == 1
    assert "the build argument SERVICE is required: --build-arg SERVICE=<postgres|fetch|" in missing.stderr
    unknown = _service_extra("redis")
    assert unknown.returncode == 1
    assert f"unknown SERVICE 'redis' (--build-arg SERVICE=...); known: {', '.join(REGISTRY.services)}" in (
        unknown.stderr
    )


# docker-compose.yml -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of a bare compose run: no DEPLOY_* knobs, and an env file with one setting."""
    env_file = tmp_path_factory.mktemp("compose") / "sse.env"
    env_file.write_text("MCP_LOG_LEVEL=DEBUG\n", encoding="utf-8")
    env = {key: value for key, value in os.environ.items() if not key.startswith("DEPLOY_")}
    return {**env, "DEPLOY_ENV_FILE": str(env_file)}


@pytest.fixture(scope="module")
def resolved_compose(compose_env: dict[str, str]) -> dict[str, Any]:
    """docker-compose.yml as Debian's docker-compose resolves it (defaults interpolated, anchors merged)."""
    if shutil.which("docker-compose") is None:
        pytest.fail("docker-compose is missing: apt-get install docker-compose (scripts/apt/containers.txt)")
    result = subprocess.run(
        ["docker-compose", "-f", "docker-compose.yml", "config"],
        cwd=REPO_ROOT,
        env=compose_env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    resolved: dict[str, Any] = yaml.safe_load(result.stdout)
    return resolved


def test_compose_file_validates_with_docker_compose(compose_env: dict[str, str]) -> None:
    result = subprocess.run(
        ["docker-compose", "-f", "docker-compose.yml", "config", "-q"],
        cwd=REPO_ROOT,
        env=compose_env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""


def _spec_input(text: str) -> str:
    """What the compose spec validates: ${NAME:-default} interpolated from the defaults, and the YAML
    anchors and merge keys (<<) resolved, as every compose implementation reads the file first."""
    interpolated = re.sub(r"\$\{([A-Z_][A-Z0-9_]*)(?::-([^}]*))?\}", lambda match: match[2] or "", text)
    return yaml.safe_dump(yaml.safe_load(interpolated), sort_keys=False)


def _validate_with_compose_spec(text: str) -> subprocess.CompletedProcess[str]:
    python = _tool(TOOLS / "compose-spec" / "bin" / "python")
    check = (
        "import sys\nfrom compose_spec import PyCompose\nPyCompose.from_yaml(sys.stdin.read())\nprint('ok')"
    )
    return subprocess.run([python, "-c", check], input=text, capture_output=True, text=True, check=False)


def test_compose_file_validates_against_the_compose_spec() -> None:
    result = _validate_with_compose_spec(
        _spec_input((REPO_ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    )
    assert result.stdout.strip() == "ok", result.stderr


def test_compose_spec_validation_rejects_a_misspelt_key() -> None:
    text = (REPO_ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    broken = text.replace("  read_only: true\n", "  read_onyl: true\n", 1)
    assert broken != text
    result = _validate_with_compose_spec(_spec_input(broken))
    assert result.returncode != 0
    assert "read_onyl" in result.stderr


@pytest.mark.parametrize("name", list(REGISTRY.services))
def test_compose_service_matches_the_registry(resolved_compose: dict[str, Any], name: str) -> None:
    entry = REGISTRY[name]
    service = resolved_compose["services"][entry.container]
    assert service["container_name"] == entry.container
    assert service["image"] == f"{entry.image}:{VERSION}"
    assert service["build"]["dockerfile"] == "Dockerfile"
    assert service["build"]["args"] == {"SERVICE": name}
    assert service["ports"] == [f"127.0.0.1:{entry.port}:{entry.port}/tcp"]
    assert sorted(service["networks"]) == sorted(entry.networks)
    assert service["healthcheck"]["test"][:4] == [
        "CMD",
        "python",
        "/opt/mcp-sse/healthcheck.py",
        str(entry.port),
    ]


def test_compose_lists_exactly_the_registry_services_on_external_networks(
    resolved_compose: dict[str, Any],
) -> None:
    containers = {entry.container for entry in REGISTRY.services.values()}
    assert set(resolved_compose["services"]) == containers
    networks = yaml.safe_load((REPO_ROOT / "config" / "networks.yaml").read_text(encoding="utf-8"))[
        "networks"
    ]
    assert set(resolved_compose["networks"]) == set(networks)
    for name, network in resolved_compose["networks"].items():
        assert network["external"] is True and network["name"] == name


@pytest.mark.parametrize("name", list(REGISTRY.services))
def test_compose_hardens_every_service(resolved_compose: dict[str, Any], name: str) -> None:
    service = resolved_compose["services"][REGISTRY[name].container]
    assert service["read_only"] is True
    assert service["tmpfs"] == ["/tmp:size=64m,mode=1777"]
    assert service["cap_drop"] == ["ALL"]
    assert "cap_add" not in service and "privileged" not in service
    assert service["security_opt"] == ["no-new-privileges:true"]
    assert service["restart"] == "unless-stopped"
    assert service["mem_limit"] and service["cpus"] and service["pids_limit"]
    assert service["stop_signal"] == "SIGTERM"
    assert service["environment"]["MCP_HOST"] == "0.0.0.0"
    assert service["environment"]["MCP_LOG_LEVEL"] == "DEBUG"  # from the env file (DEPLOY_ENV_FILE)
    assert service["logging"]["options"]["max-size"]


def test_compose_filesystem_mounts_workspace_read_only_and_shared_read_write(
    resolved_compose: dict[str, Any],
) -> None:
    service = resolved_compose["services"]["mcp-filesystem"]
    assert service["environment"]["ALLOWED_PATHS"] == "/workspace:ro,/shared:rw"
    volumes = {volume.split(":")[1]: volume.split(":")[2] for volume in service["volumes"]}
    assert volumes == {"/workspace": "ro", "/shared": "rw"}


def test_compose_mounts_the_engine_socket_read_only_into_monitoring_only(
    resolved_compose: dict[str, Any],
) -> None:
    socket_mounts = {
        name: volume
        for name, service in resolved_compose["services"].items()
        for volume in service.get("volumes", [])
        if "docker.sock" in volume
    }
    assert socket_mounts == {"mcp-monitoring": "/var/run/docker.sock:/var/run/docker.sock:ro"}
    monitoring = resolved_compose["services"]["mcp-monitoring"]
    assert monitoring["environment"]["DOCKER_HOST"] == "unix:///var/run/docker.sock"


# Scripts ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_is_shellcheck_clean(script: str) -> None:
    if shutil.which("shellcheck") is None:
        pytest.fail("shellcheck is missing: apt-get install shellcheck (scripts/apt/containers.txt)")
    result = subprocess.run(
        ["shellcheck", script], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout


def test_deploy_sh_names_an_unknown_command_and_an_unknown_service() -> None:
    unknown_command = subprocess.run(["./deploy.sh", "launch"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert unknown_command.returncode != 0
    assert "unknown command 'launch'" in unknown_command.stderr
    unknown_service = subprocess.run(
        ["./deploy.sh", "logs", "mcp-redis"], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert unknown_service.returncode != 0
    assert (
        "unknown service 'mcp-redis'; known: postgres fetch filesystem github monitoring"
        in unknown_service.stderr
    )


# The in-image healthcheck probe ------------------------------------------------------------------------


@pytest.fixture
def health_server() -> Iterator[tuple[str, dict[str, int]]]:
    """A real HTTP server whose /health answers the status the test sets."""
    answer = {"status": 200}

    async def health(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok" if answer["status"] == 200 else "degraded"}, answer["status"])

    with run_app(Starlette(routes=[Route("/health", health)])) as url:
        yield url, answer


def _probe(port: str, *args: str) -> int:
    env = {key: value for key, value in os.environ.items() if key != "MCP_PORT"}
    probe = REPO_ROOT / "scripts" / "container" / "healthcheck.py"
    return subprocess.run(
        [sys.executable, probe, port, *args], env=env, capture_output=True, check=False
    ).returncode


def test_healthcheck_probe_passes_on_200_and_fails_on_503_unless_degraded_is_allowed(
    health_server: tuple[str, dict[str, int]],
) -> None:
    url, answer = health_server
    port = url.rsplit(":", 1)[1]
    assert _probe(port) == 0
    answer["status"] = 503
    assert _probe(port) == 1
    assert _probe(port, "--allow-degraded") == 0
    answer["status"] = 500
    assert _probe(port, "--allow-degraded") == 1


def test_healthcheck_probe_fails_when_nothing_listens() -> None:
    from tests.support.servers import free_port

    assert _probe(str(free_port())) == 1


def test_deploy_k8s_passes_the_env_file_secret_and_registry_images_to_the_chart(tmp_path: Path) -> None:
    """``./deploy.sh k8s --dry-run`` renders what it would install (helm template, here the Helm SDK
    stand-in scripts/helm from the chart's tool set-up; no Kubernetes API exists on this machine)."""
    if not (TOOLS / "helm").is_dir():
        pytest.fail(".tools/helm is missing: run scripts/setup.d/60-chart-tools.sh")
    env_file = tmp_path / "sse.env"
    env_file.write_text("MCP_LOG_LEVEL=DEBUG\n", encoding="utf-8")
    # monitoring is off in the chart's defaults, and then needs the API server's address.
    monitoring_on = [
        "--set",
        "services.monitoring.enabled=true",
        "--set",
        "networkPolicy.kubeApi.cidrs={10.43.0.1/32}",
    ]
    env = {
        **os.environ,
        "PATH": f"{REPO_ROOT / 'scripts'}:{os.environ['PATH']}",
        "DEPLOY_ENV_FILE": str(env_file),
    }
    result = subprocess.run(
        ["./deploy.sh", "k8s", "--dry-run", *monitoring_on],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    deployments = [doc for doc in yaml.safe_load_all(result.stdout) if doc and doc["kind"] == "Deployment"]
    assert len(deployments) == len(REGISTRY.services)
    for deployment in deployments:
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert {"secretRef": {"name": "mcp-sse-env"}} in container["envFrom"]
    images = sorted(doc["spec"]["template"]["spec"]["containers"][0]["image"] for doc in deployments)
    assert images == sorted(f"{entry.image}:{VERSION}" for entry in REGISTRY.services.values())
