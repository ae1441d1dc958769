"""Fixtures of the monitoring tests: settings on a chosen platform, stand-in backends, a real Prometheus."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.monitoring.settings import Platform
from tests.services.monitoring.standins import DockerStandIn, KubeApiStandIn, LokiStandIn
from tests.services.monitoring.support import SERVICE_ACCOUNT_TOKEN, nowhere
from tests.support.servers import run_app


@pytest.fixture
def platform_nowhere(tmp_path: Path) -> Platform:
    return nowhere(tmp_path)


# Kubernetes API stand-in over TLS ---------------------------------------------------------------


@pytest.fixture(scope="session")
def tls_certificate() -> Iterator[tuple[Path, Path]]:
    """A self-signed certificate for 127.0.0.1 (the in-cluster client only speaks HTTPS)."""
    directory = Path(tempfile.mkdtemp(prefix="mcp-kube-tls-"))
    cert, key = directory / "tls.crt", directory / "tls.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    yield cert, key
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def kube_api(tls_certificate: tuple[Path, Path], tmp_path: Path) -> Iterator[tuple[KubeApiStandIn, Platform]]:
    """The Kubernetes API stand-in on https://127.0.0.1:PORT and a platform that looks in-cluster:
    ``KUBERNETES_SERVICE_HOST/PORT`` set, and a service-account directory (token, ca.crt, namespace mcp)."""
    cert, key = tls_certificate
    standin = KubeApiStandIn(token=SERVICE_ACCOUNT_TOKEN, readable_namespaces={"mcp", "apps"})
    with run_app(standin.app(), ssl_certfile=str(cert), ssl_keyfile=str(key)) as url:
        port = url.rsplit(":", 1)[1]
        account = tmp_path / "serviceaccount"
        account.mkdir()
        (account / "token").write_text(SERVICE_ACCOUNT_TOKEN)
        (account / "ca.crt").write_bytes(cert.read_bytes())
        (account / "namespace").write_text("mcp")
        platform = Platform(
            environ={"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": port},
            serviceaccount_dir=account,
            docker_socket=tmp_path / "no-docker.sock",
        )
        yield standin, platform


# Docker Engine stand-in on a unix socket --------------------------------------------------------


@pytest.fixture
def docker_engine() -> Iterator[tuple[DockerStandIn, Path]]:
    """The Docker Engine stand-in listening on a unix socket; yields it and the socket path."""
    standin = DockerStandIn()
    # A short directory: unix socket paths are limited to about 100 bytes.
    directory = Path(tempfile.mkdtemp(prefix="mcp-dkr-"))
    socket_path = directory / "docker.sock"
    with run_app(standin.app(), uds=str(socket_path)):  # uvicorn ignores host/port when given a socket
        yield standin, socket_path
    shutil.rmtree(directory, ignore_errors=True)


# Loki stand-in ----------------------------------------------------------------------------------


@pytest.fixture
def loki() -> Iterator[tuple[LokiStandIn, str]]:
    standin = LokiStandIn()
    with run_app(standin.app()) as url:
        yield standin, url


# A real Prometheus ------------------------------------------------------------------------------
