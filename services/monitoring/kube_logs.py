"""Pod logs in Kubernetes, through the official ``kubernetes`` client with the pod's service account.

Importing this module imports ``kubernetes`` (about 25 MB): the service imports it only once
:func:`services.monitoring.cluster.detect_cluster` has found a cluster.

The client is synchronous: calls run in worker threads, a few at a time, so a slow API server never
stalls the event loop. Only the namespaces allowed by ``MONITORING_NAMESPACES`` (default: the pod's
own) are read.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from datetime import UTC, datetime
from typing import cast

import urllib3
from kubernetes.client import ApiClient, Configuration, CoreV1Api, VersionApi
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from kubernetes.config.incluster_config import InClusterConfigLoader

from libmcp import ToolError
from services.monitoring.cluster import InCluster
from services.monitoring.log_window import LineCollector
from services.monitoring.models import ContainerLogs, LogLine

# https://kubernetes.io/docs/concepts/overview/working-with-objects/names/
_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")

CONCURRENCY = 4
REQUEST_TIMEOUT = (5.0, 30.0)  # connect, read
CHUNK_BYTES = 64 * 1024


class KubeLogs:
    """Reads pod logs in the allowed namespaces."""

    source = "kubernetes"

    def __init__(self, cluster: InCluster, namespaces: list[str], *, max_lines: int, max_bytes: int) -> None:
        configuration = Configuration()
        try:
            InClusterConfigLoader(
                token_filename=str(cluster.token_file),
                cert_filename=str(cluster.ca_file),
                environ=cluster.platform.environ,
            ).load_and_set(configuration)
        except ConfigException as exc:
            raise RuntimeError(f"in-cluster Kubernetes configuration is incomplete: {exc}") from None
        self.api_url: str = configuration.host
        self.own_namespace = cluster.namespace
        self.allowed_namespaces = list(namespaces) or ([cluster.namespace] if cluster.namespace else [])
        self.max_lines = max_lines
        self.max_bytes = max_bytes
        self._api_client = ApiClient(configuration)
        self._core = CoreV1Api(self._api_client)
        self._slots = asyncio.Semaphore(CONCURRENCY)

    def close(self) -> None:
        self._api_client.close()

    def describe(self) -> str:
        return f"Kubernetes API at {self.api_url}, namespaces: {', '.join(self.allowed_namespaces) or 'none'}"

    async def version(self) -> str:
        """The API server's version (``/version``, readable by every service account)."""
        async with self._slots:
            version = await asyncio.to_thread(self._version_sync)
        return f"{self.describe()} (Kubernetes {version})"

    def _version_sync(self) -> str:
        # Read raw: the generated model rejects answers that leave out build fields.
        response = cast(
            urllib3.HTTPResponse,
            VersionApi(self._api_client).get_code(_preload_content=False, _request_timeout=3.0),
        )
        try:
            return str(json.loads(response.data).get("gitVersion", "unknown"))
        finally:
            response.release_conn()

    def namespace_for(self, requested: str | None) -> str:
        """The namespace to read: the one asked for if allowed, else the pod's own or the first allowed."""
        allowed = self.allowed_namespaces
        if not allowed:
            raise ToolError("no Kubernetes namespace is allowed: set MONITORING_NAMESPACES")
        if requested is None:
            return self.own_namespace if self.own_namespace in allowed else allowed[0]
        if requested not in allowed:
            raise ToolError(
                f"namespace {requested!r} is not allowed; allowed namespaces: {', '.join(allowed)} "
                "(MONITORING_NAMESPACES)"
            )
        return requested

    async def read(
        self, pod: str, *, namespace: str | None, container: str | None, tail: int, since: datetime | None
    ) -> ContainerLogs:
        """The newest ``tail`` lines of a pod (one container of it), newest last."""
        if len(pod) > 253 or not _DNS1123_SUBDOMAIN.fullmatch(pod):
            raise ToolError(
                f"{pod!r} is not a valid pod name (lower-case letters, digits, '-' and '.', at most 253)"
            )
        if container is not None and not _DNS1123_LABEL.fullmatch(container):
            raise ToolError(f"{container!r} is not a valid container name (lower-case letters, digits, '-')")
        target_namespace = self.namespace_for(namespace)
        since_seconds = None
        if since is not None:
            elapsed = (datetime.now(UTC) - since).total_seconds()
            if elapsed <= 0:
                raise ToolError("since is in the future")
            since_seconds = max(1, math.ceil(elapsed))
        tail = min(tail, self.max_lines)
        async with self._slots:
            lines, truncated = await asyncio.to_thread(
                self._read_sync, pod, target_namespace, container, tail, since_seconds
            )
        return ContainerLogs(
            source="kubernetes",
            name=pod,
            namespace=target_namespace,
            container=container,
            lines=lines,
            truncated=truncated,
        )

    def _read_sync(
        self, pod: str, namespace: str, container: str | None, tail: int, since_seconds: int | None
    ) -> tuple[list[LogLine], bool]:
        try:
            # Streamed rather than preloaded, so memory stays within the caps however long the log is.
            pod_log = self._core.read_namespaced_pod_log(
                name=pod,
                namespace=namespace,
                container=container,
                tail_lines=tail,
                since_seconds=since_seconds,
                timestamps=True,
                _preload_content=False,
                _request_timeout=REQUEST_TIMEOUT,
            )
            response = cast(urllib3.HTTPResponse, pod_log)
        except ApiException as exc:
            raise ToolError(_describe_api_error(exc, pod, namespace)) from None
        except urllib3.exceptions.HTTPError as exc:
            raise ToolError(f"the Kubernetes API at {self.api_url} could not be reached: {exc}") from None
        collector = LineCollector(tail, self.max_bytes)
        try:
            for chunk in response.stream(CHUNK_BYTES):
                collector.feed(chunk)
        except urllib3.exceptions.HTTPError as exc:
            raise ToolError(f"reading the logs of pod {pod} failed: {exc}") from None
        finally:
            response.release_conn()
        return collector.finish()


def _describe_api_error(exc: ApiException, pod: str, namespace: str) -> str:
    message = exc.reason or ""
    body = exc.body.decode("utf-8", "replace") if isinstance(exc.body, bytes) else exc.body
    if body:
        try:
            message = json.loads(body).get("message", message)
        except (ValueError, AttributeError):
            message = body[:500]
    if exc.status == 401:
        return "the Kubernetes API refused the service account's token (401 Unauthorized)"
    if exc.status == 403:
        return (
            f"the service account may not read pod logs in namespace {namespace} "
            f"(RBAC: it needs get on pods/log): {message}"
        )
    if exc.status == 404:
        return f"pod {pod} not found in namespace {namespace}: {message}"
    return f"the Kubernetes API answered {exc.status}: {message}"
