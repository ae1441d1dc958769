"""The service registry (``config/services.yaml``): names, ports, images and settings, written once."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from libmcp import Service

_PACKAGED = Path(__file__).with_name("services.yaml")
_IN_REPO = Path(__file__).resolve().parents[2] / "config" / "services.yaml"


@dataclass(frozen=True)
class EnvVar:
    name: str
    default: str
    secret: bool
    description: str


@dataclass(frozen=True)
class ServiceEntry:
    name: str
    description: str
    port: int
    metrics_port: int
    extra: str
    image: str
    container: str
    networks: tuple[str, ...]
    env: tuple[EnvVar, ...]

    @property
    def module(self) -> str:
        return f"services.{self.name}.service"

    def load(self) -> Service[Any, Any]:
        """Import the service module and return its :class:`Service` (ImportError: extra missing)."""
        service: Service[Any, Any] = importlib.import_module(self.module).service
        return service


@dataclass(frozen=True)
class Registry:
    services: dict[str, ServiceEntry]
    common_env: tuple[EnvVar, ...]
    path: Path

    def __getitem__(self, name: str) -> ServiceEntry:
        try:
            return self.services[name]
        except KeyError:
            raise KeyError(f"unknown service {name!r}; known: {', '.join(self.services)}") from None

    def all_variables(self) -> set[str]:
        names = {var.name for var in self.common_env}
        for entry in self.services.values():
            names.update(var.name for var in entry.env)
        return names


def _env(block: dict[str, Any] | None) -> tuple[EnvVar, ...]:
    return tuple(
        EnvVar(
            name, str(spec.get("default", "")), bool(spec.get("secret", False)), spec.get("description", "")
        )
        for name, spec in (block or {}).items()
    )


def registry_path() -> Path:
    return _IN_REPO if _IN_REPO.is_file() else _PACKAGED


@cache
def load_registry(path: Path | None = None) -> Registry:
    source = path or registry_path()
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    services = {
        name: ServiceEntry(
            name=name,
            description=spec.get("description", ""),
            port=int(spec["port"]),
            metrics_port=int(spec["metrics_port"]),
            extra=spec["extra"],
            image=spec["image"],
            container=spec["container"],
            networks=tuple(spec.get("networks", ())),
            env=_env(spec.get("env")),
        )
        for name, spec in data["services"].items()
    }
    return Registry(services=services, common_env=_env(data.get("common_env")), path=source)
