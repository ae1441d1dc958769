"""The github settings: the registry's variables and defaults; start-up failures name the variable."""

from __future__ import annotations

import pytest

from fleet.registry import load_registry
from libmcp import SettingsError
from libmcp.config import load_settings
from services.github.settings import GithubSettings
from tests.support.servers import ServiceProcess


def test_settings_read_the_variables_the_registry_lists_with_its_defaults():
    entry = load_registry()["github"]
    defaults = GithubSettings.model_validate({})
    assert {var.name.lower() for var in entry.env} == set(GithubSettings.model_fields)
    assert {var.name for var in entry.env if var.secret} == {"GITHUB_TOKEN"}
    from_registry = load_settings(GithubSettings, environ={var.name: var.default for var in entry.env})
    assert from_registry == defaults
    assert defaults.github_api_url == "https://api.github.com"
    assert (defaults.github_allow_write, defaults.github_tools, defaults.github_max_concurrency) == (
        False,
        [],
        4,
    )


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        (
            {"GITHUB_TOOLS": "get_issue,delete_repo"},
            "GITHUB_TOOLS='get_issue,delete_repo': Value error, unknown tool(s) delete_repo",
        ),
        (
            {"GITHUB_TOOLS": "create_issue"},
            "names write tool(s) create_issue but GITHUB_ALLOW_WRITE is false",
        ),
        (
            {"GITHUB_API_URL": "ftp://example.org"},
            "GITHUB_API_URL='ftp://example.org': Value error, must be an http(s) URL",
        ),
        ({"GITHUB_MAX_FILE_BYTES": "0"}, "GITHUB_MAX_FILE_BYTES='0'"),
    ],
)
def test_bad_values_name_the_variable(environ, expected):
    with pytest.raises(SettingsError) as failure:
        load_settings(GithubSettings, environ=environ)
    assert expected in str(failure.value)


def test_a_credential_in_the_api_url_is_refused_without_echoing_it():
    with pytest.raises(SettingsError) as failure:
        load_settings(GithubSettings, environ={"GITHUB_API_URL": "https://bot:hunter2@ghe.example/api/v3"})
    assert "must not carry credentials; put the token in GITHUB_TOKEN" in str(failure.value)


def test_enterprise_api_urls_keep_their_path():
    settings = load_settings(GithubSettings, environ={"GITHUB_API_URL": "https://ghe.example/api/v3/"})
    assert settings.github_api_url == "https://ghe.example/api/v3"


def test_the_service_refuses_to_start_when_github_tools_names_an_unknown_tool():
    process = ServiceProcess("github", env={"GITHUB_TOOLS": "search_repositories,merge_everything"})
    with pytest.raises(RuntimeError) as failure:
        process.start(timeout=30)
    message = str(failure.value)
    assert "exited with 2" in message
    assert "GITHUB_TOOLS" in message and "merge_everything" in message
