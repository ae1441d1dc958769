"""Fixtures of the github tests: the local GitHub stand-in and the service pointed at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from harness.fake_github import FakeGitHub
from libmcp import Server
from services.github.service import service
from services.github.settings import GithubSettings
from tests.services.github.support import TOKEN
from tests.support.servers import run_app

GithubServer = tuple[str, Server]


@pytest.fixture(scope="session")
def github_stand_in() -> Iterator[tuple[FakeGitHub, str]]:
    fake = FakeGitHub(valid_tokens={TOKEN})
    fake.reset()
    with run_app(fake.app()) as url:
        yield fake, url


@pytest.fixture
def fake(github_stand_in: tuple[FakeGitHub, str]) -> Iterator[FakeGitHub]:
    """The stand-in, emptied of earlier requests; a blocked slow request is released afterwards."""
    stand_in, _ = github_stand_in
    stand_in.reset()
    yield stand_in
    stand_in.slow_release.set()


@pytest.fixture
def github_settings(github_stand_in: tuple[FakeGitHub, str]) -> Callable[..., GithubSettings]:
    """``github_settings(github_allow_write=True, ...)``: settings pointed at the stand-in, with the token."""
    _, url = github_stand_in

    def make(**overrides: Any) -> GithubSettings:
        return GithubSettings.model_validate({"github_token": TOKEN, "github_api_url": url, **overrides})

    return make


@pytest.fixture
def serve_github(
    serve_service: Callable[..., GithubServer],
    github_settings: Callable[..., GithubSettings],
    fake: FakeGitHub,
) -> Callable[..., GithubServer]:
    """``url, server = serve_github(github_allow_write=True, mcp={"tool_timeout_s": 1})``."""

    def start(*, mcp: dict[str, Any] | None = None, **settings: Any) -> GithubServer:
        return serve_service(service, github_settings(**settings), **(mcp or {}))

    return start


@pytest.fixture
def github(serve_github: Callable[..., GithubServer]) -> GithubServer:
    """The service with default settings (read tools only) and the test token."""
    return serve_github()
