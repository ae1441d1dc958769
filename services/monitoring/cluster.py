"""Whether the service runs in a Kubernetes pod: cheap to ask, so it never loads the Kubernetes client.

``kubernetes`` costs about 25 MB of memory once imported, so only :mod:`services.monitoring.kube_logs`
imports it, and the service imports that module only when :func:`detect_cluster` finds a cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from services.monitoring.settings import Platform


@dataclass(frozen=True, slots=True)
class InCluster:
    """What a pod gets from Kubernetes: the API address in its environment and its service account."""

    platform: Platform
    token_file: Path
    ca_file: Path
    namespace: str | None


def detect_cluster(platform: Platform) -> InCluster | None:
    """The in-cluster environment (``KUBERNETES_SERVICE_HOST`` plus a service-account token), or None."""
    env = platform.environ
    token_file = platform.serviceaccount_dir / "token"
    if not env.get("KUBERNETES_SERVICE_HOST") or not token_file.is_file():
        return None
    namespace_file = platform.serviceaccount_dir / "namespace"
    namespace = namespace_file.read_text().strip() if namespace_file.is_file() else None
    return InCluster(platform, token_file, platform.serviceaccount_dir / "ca.crt", namespace or None)
