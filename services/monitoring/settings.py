"""Settings of the monitoring service, and where it looks for the platform it runs on."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from pydantic import Field, PrivateAttr, field_validator

from libmcp import CommaList, ServiceSettings


@dataclass(frozen=True, slots=True)
class Platform:
    """Where the service finds its surroundings. Not settings: the platform provides these, and tests
    point them at stand-ins (an API server on loopback, a temporary service-account directory)."""

    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    serviceaccount_dir: Path = Path("/var/run/secrets/kubernetes.io/serviceaccount")
    docker_socket: Path = Path("/var/run/docker.sock")
    cgroup_root: Path = Path("/sys/fs/cgroup")


class MonitoringSettings(ServiceSettings):
    """``LOKI_URL``, ``PROMETHEUS_URL``, ``DOCKER_HOST``, ``MONITORING_*`` (see config/services.yaml)."""

    loki_url: str = ""
    prometheus_url: str = ""
    docker_host: str = ""
    monitoring_namespaces: CommaList = Field(default_factory=list)
    monitoring_max_log_lines: int = Field(default=1000, gt=0)
    monitoring_max_log_bytes: int = Field(default=1_048_576, gt=0)
    monitoring_max_response_bytes: int = Field(default=8_388_608, ge=1024)

    _platform: Platform = PrivateAttr(default_factory=Platform)

    @field_validator("loki_url", "prometheus_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if value and (not value.startswith(("http://", "https://")) or not httpx.URL(value).host):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("docker_host")
    @classmethod
    def _docker_address(cls, value: str) -> str:
        if value and not (value.startswith("unix:///") or (value.startswith("tcp://") and len(value) > 6)):
            raise ValueError("use unix:///path/to/docker.sock or tcp://host:port")
        return value

    @property
    def platform(self) -> Platform:
        return self._platform

    def on_platform(self, platform: Platform) -> MonitoringSettings:
        """A copy of these settings that looks for its surroundings in ``platform``."""
        copy = self.model_copy()
        copy._platform = platform
        return copy
