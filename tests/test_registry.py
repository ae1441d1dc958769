"""The registry (config/services.yaml) is the one source of truth: everything else must agree with it."""

from __future__ import annotations

import re

import pytest
import yaml

from fleet import generate
from fleet.client_config import ConfigOptions, litellm_config, service_url
from fleet.registry import load_registry
from libmcp.config import variable_names
from tests.support.servers import REPO_ROOT

REGISTRY = load_registry()
ENTRIES = list(REGISTRY.services.values())


def load_yaml(relative: str) -> dict:
    path = REPO_ROOT / relative
    assert path.is_file(), f"{relative} is missing"
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def test_generated_files_are_current():
    assert generate.main(["--check"]) == 0, "run `python -m fleet.generate` and commit the result"


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda entry: entry.name)
def test_service_settings_read_exactly_the_registry_variables(entry):
    service = entry.load()
    assert service.name == entry.name
    assert variable_names(service.settings_class) == {var.name for var in entry.env}


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda entry: entry.name)
def test_registry_defaults_are_the_settings_defaults(entry):
    settings_class = entry.load().settings_class
    defaults = settings_class.model_validate({})
    for var in entry.env:
        field = var.name.lower()
        default = getattr(defaults, field)
        if var.default == "":
            assert not default, f"{var.name}: registry says unset, settings default is {default!r}"
        else:
            parsed = getattr(settings_class.model_validate({field: var.default}), field)
            assert parsed == default, (
                f"{var.name}: registry {var.default!r} parses to {parsed!r}, not {default!r}"
            )


def test_common_variables_are_the_server_settings():
    from libmcp import ServerSettings

    assert variable_names(ServerSettings) == {var.name for var in REGISTRY.common_env}


def test_ports_are_unique():
    ports = [entry.port for entry in ENTRIES] + [entry.metrics_port for entry in ENTRIES]
    assert len(ports) == len(set(ports))


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda entry: entry.name)
def test_compose_file_matches_the_registry(entry):
    compose = load_yaml("docker-compose.yml")
    service = compose["services"][entry.container]
    assert service["container_name"] == entry.container
    assert service["image"].split(":")[0].endswith(entry.image)
    published = [str(port) for port in service["ports"]]
    # Loopback only, on the registry port (a ${DEPLOY_PORT_X:-port} override keeps that default).
    pattern = rf"127\.0\.0\.1:(\$\{{DEPLOY_PORT_[A-Z]+:-{entry.port}\}}|{entry.port}):{entry.port}"
    assert any(re.fullmatch(pattern, port) for port in published), published
    networks = service["networks"]
    assert sorted(networks if isinstance(networks, list) else networks.keys()) == sorted(entry.networks)


def test_compose_networks_are_the_registry_networks():
    compose = load_yaml("docker-compose.yml")
    declared = load_yaml("config/networks.yaml")["networks"]
    assert set(compose["networks"]) == set(declared)
    for name, spec in declared.items():
        assert bool(compose["networks"][name].get("external")) == spec["external"]


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda entry: entry.name)
def test_chart_default_values_match_the_registry(entry):
    values = load_yaml("charts/mcp-sse/values.yaml")["services"][entry.name]
    assert values["port"] == entry.port
    assert values["metricsPort"] == entry.metrics_port
    assert values["image"]["repository"] == entry.image


def test_skaffold_builds_and_forwards_every_registry_service():
    documents = list(yaml.safe_load_all((REPO_ROOT / "skaffold.yaml").read_text(encoding="utf-8")))
    text = yaml.safe_dump(documents)
    artifacts = {artifact["image"]: artifact for artifact in documents[0]["build"]["artifacts"]}
    for entry in ENTRIES:
        assert entry.image in artifacts, f"skaffold.yaml does not build {entry.image}"
        assert artifacts[entry.image]["docker"]["buildArgs"] == {"SERVICE": entry.name}
        assert f"localPort: {entry.port}" in text, f"skaffold.yaml does not forward {entry.port}"


def test_local_client_configs_use_the_registry_ports():
    config = litellm_config(ConfigOptions())
    for entry in ENTRIES:
        assert config["mcp_servers"][entry.name]["url"] == f"http://127.0.0.1:{entry.port}/mcp"
        assert service_url(entry, "compose") == f"http://{entry.container}:{entry.port}"
