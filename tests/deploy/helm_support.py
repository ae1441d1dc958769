"""Render, lint and validate the Helm chart, and run the checkers, without a cluster or a helm binary.

The tools live in their own venvs under .tools/ (scripts/setup.d/60-chart-tools.sh): helm-python-sdk and
kubernetes-validate in .tools/helm, network-config-analyzer in .tools/nca, checkov in .tools/checkov.
The test process (the project's .venv) never imports them: this module runs itself as a worker under
.tools/helm/bin/python for the Helm and schema work (see ``_tool_main``) and exchanges JSON lines on stdio.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = ROOT / "charts" / "mcp-sse"
FIXTURES = Path(__file__).resolve().parent / "chart_fixtures"
VALUES_DIR = FIXTURES / "values"
TOOLS = ROOT / ".tools"
HELM_PYTHON = TOOLS / "helm" / "bin" / "python"
NCA = TOOLS / "nca" / "bin" / "nca"
CHECKOV = TOOLS / "checkov" / "bin" / "checkov"
HELM_STAND_IN = ROOT / "scripts" / "helm"

RELEASE = "mcp-sse"
NAMESPACE = "mcp"
KUBE_VERSIONS = ("1.30.0", "1.33.0")
SERVICE_NAMES = ("postgres", "fetch", "filesystem", "github", "monitoring")
# Environment for the analysers: never look for a cluster, never reach the network.
OFFLINE_ENV = {
    "KUBECONFIG": os.devnull,
    "HTTP_PROXY": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
}


class RenderError(Exception):
    """The chart refused the values (schema) or a template failed; the message is Helm's."""


def require_tool(path: Path) -> Path:
    """The tool's path, or a test failure telling how to install it (CI installs it: no skip)."""
    if not path.exists():
        import pytest

        pytest.fail(f"{path.relative_to(ROOT)} is missing: run scripts/setup.d/60-chart-tools.sh")
    return path


class _ToolWorker:
    """One long-lived ``.tools/helm/bin/python helm_support.py serve`` process: a JSON request per line in,
    a JSON answer per line out. Loading the Helm library and the schemas once keeps each call cheap."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[str] | None = None

    def call(self, command: str, payload: dict[str, Any]) -> dict[str, Any]:
        if self.process is None or self.process.poll() is not None:
            python = require_tool(HELM_PYTHON)
            self.process = subprocess.Popen(
                [str(python), str(Path(__file__).resolve()), "serve"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            atexit.register(self.close)
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps({"command": command, "payload": payload}) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            code = self.process.wait(timeout=10)
            raise RuntimeError(f"helm_support worker exited ({code}) during {command}")
        answer: dict[str, Any] = json.loads(line)
        if "crash" in answer:
            raise RuntimeError(f"helm_support {command} failed: {answer['crash']}")
        return answer

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            self.process.wait(timeout=30)


_WORKER = _ToolWorker()


def _run_tool_mode(command: str, payload: dict[str, Any]) -> dict[str, Any]:
    return _WORKER.call(command, payload)


def load_variant(name: str) -> dict[str, Any]:
    """Values of a variant under chart_fixtures/values/ ("default" is the chart's own values)."""
    if name == "default":
        return {}
    data = yaml.safe_load((VALUES_DIR / f"{name}.yaml").read_text(encoding="utf-8"))
    return data or {}


def variant_names() -> list[str]:
    return ["default", *sorted(path.stem for path in VALUES_DIR.glob("*.yaml"))]


def chart_values() -> dict[str, Any]:
    """The chart's default values.yaml."""
    data: dict[str, Any] = yaml.safe_load((CHART_DIR / "values.yaml").read_text(encoding="utf-8"))
    return data


@dataclass
class Rendering:
    """The rendered chart: template path -> text, and the parsed Kubernetes objects."""

    templates: dict[str, str]
    documents: list[dict[str, Any]] = field(init=False)

    def __post_init__(self) -> None:
        self.documents = [
            document
            for path, text in sorted(self.templates.items())
            if not path.endswith("NOTES.txt")
            for document in yaml.safe_load_all(text)
            if document
        ]

    @property
    def notes(self) -> str:
        return next((text for path, text in self.templates.items() if path.endswith("NOTES.txt")), "")

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [document for document in self.documents if document["kind"] == kind]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        matches = [document for document in self.of_kind(kind) if document["metadata"]["name"] == name]
        assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
        return matches[0]

    def names(self, kind: str) -> set[str]:
        return {document["metadata"]["name"] for document in self.of_kind(kind)}

    def pod_specs(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """(description, pod spec) of every pod the chart makes: Deployment templates and bare Pods."""
        for document in self.documents:
            if document["kind"] == "Pod":
                yield f"Pod/{document['metadata']['name']}", document["spec"]
            elif "template" in document.get("spec", {}):
                yield (
                    f"{document['kind']}/{document['metadata']['name']}",
                    document["spec"]["template"]["spec"],
                )

    def yaml_text(self) -> str:
        return "---\n".join(yaml.safe_dump(document, sort_keys=False) for document in self.documents)


@functools.cache
def _render_cached(values_json: str, release: str, namespace: str) -> Rendering:
    result = _run_tool_mode(
        "render", {"values": json.loads(values_json), "release": release, "namespace": namespace}
    )
    if "error" in result:
        raise RenderError(result["error"])
    return Rendering(result["templates"])


def render(
    values: dict[str, Any] | None = None, *, release: str = RELEASE, namespace: str = NAMESPACE
) -> Rendering:
    """Render the chart through the Helm SDK (values.schema.json enforced), cached per input."""
    return _render_cached(json.dumps(values or {}, sort_keys=True), release, namespace)


def render_variant(name: str) -> Rendering:
    return render(load_variant(name))


def lint(values: dict[str, Any] | None = None, kube_version: str = "v1.30.0") -> dict[str, Any]:
    """`helm lint --strict` through the SDK: {"messages": [{severity, path, error}], "errors": [...]}."""
    return _run_tool_mode("lint", {"values": values or {}, "kube_version": kube_version})


def validate_documents(
    documents: Sequence[dict[str, Any]], versions: Sequence[str] = KUBE_VERSIONS
) -> list[dict[str, Any]]:
    """kubernetes-validate (strict) of each object against each version; one entry per object and version.

    Entries: {"version", "kind", "name", "status": "valid" | "invalid" | "no-schema", "error"}.
    """
    result = _run_tool_mode("validate", {"documents": list(documents), "versions": list(versions)})
    entries: list[dict[str, Any]] = result["results"]
    return entries


def values_from_set_flags(expressions: Sequence[str]) -> dict[str, Any]:
    """What `helm --set EXPR ...` would give, parsed by the Helm SDK."""
    values: dict[str, Any] = _run_tool_mode("set", {"expressions": list(expressions)})["values"]
    return values


def run_checkov(directory: Path) -> dict[str, Any]:
    """checkov's kubernetes framework over every YAML file in ``directory``; the JSON report."""
    checkov = require_tool(CHECKOV)
    proc = subprocess.run(
        [
            str(checkov),
            "-d",
            str(directory),
            "--framework",
            "kubernetes",
            "--skip-download",
            "--compact",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, **OFFLINE_ENV},
        check=False,
    )
    if not proc.stdout.strip().startswith(("{", "[")):
        raise RuntimeError(f"checkov gave no JSON report ({proc.returncode}): {proc.stderr[-2000:]}")
    report = json.loads(proc.stdout)
    if isinstance(report, list):
        (report,) = [entry for entry in report if entry.get("check_type") == "kubernetes"]
    result: dict[str, Any] = report
    return result


def run_nca(arguments: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """network-config-analyzer; its exit code is the number of failed checks (scheme, permits, forbids)."""
    nca = require_tool(NCA)
    return subprocess.run(
        [str(nca), *arguments],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=cwd,
        env={**os.environ, **OFFLINE_ENV},
        check=False,
    )


def registry() -> dict[str, Any]:
    """config/services.yaml, the single source of truth for names, ports, images and settings."""
    data: dict[str, Any] = yaml.safe_load((ROOT / "config" / "services.yaml").read_text(encoding="utf-8"))
    return data


def package_version() -> str:
    from importlib.metadata import version

    return version("mcp-sse")


# --- tool mode: runs under .tools/helm/bin/python, talks JSON on stdio ---------------------------------


def _tool_render(payload: dict[str, Any]) -> dict[str, Any]:
    import helm_python

    try:
        with helm_python.Chart.load(str(CHART_DIR)) as chart:
            chart.validate_schema(payload["values"])
            templates = chart.render(
                payload["values"], name=payload["release"], namespace=payload["namespace"], is_install=True
            )
    except helm_python.HelmError as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    return {"templates": templates}


def _tool_lint(payload: dict[str, Any]) -> dict[str, Any]:
    import helm_python

    report: dict[str, Any] = helm_python.lint(
        str(CHART_DIR),
        payload["values"],
        strict=True,
        namespace=NAMESPACE,
        kube_version=payload["kube_version"],
    )
    return report


def _tool_validate(payload: dict[str, Any]) -> dict[str, Any]:
    import kubernetes_validate
    from kubernetes_validate import utils
    from kubernetes_validate.utils import SchemaNotFoundError

    if not hasattr(utils.schema_contents, "cache_info"):
        # validate() re-reads and re-parses the multi-megabyte definitions file on every call.
        utils.schema_contents = functools.cache(utils.schema_contents)

    results = []
    for version in payload["versions"]:
        for document in payload["documents"]:
            entry = {"version": version, "kind": document.get("kind"), "name": document["metadata"]["name"]}
            try:
                kubernetes_validate.validate(document, version, strict=True)
                entry.update(status="valid", error="")
            except SchemaNotFoundError as exc:
                entry.update(status="no-schema", error=str(exc))
            except Exception as exc:
                entry.update(status="invalid", error=f"{type(exc).__name__}: {exc}")
            results.append(entry)
    return {"results": results}


def _tool_set_values(payload: dict[str, Any]) -> dict[str, Any]:
    """Values from `--set key=value` expressions, parsed by Helm itself, merged in order."""
    import helm_python

    values: dict[str, Any] = {}
    for expression in payload["expressions"]:
        values = _merge(values, helm_python.parse_set_string(expression))
    return {"values": values}


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    result = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = _merge(result[key], value)
        else:
            result[key] = value
    return result


def _tool_main() -> None:
    """``serve``: answer JSON requests line by line until stdin closes."""
    handlers = {
        "render": _tool_render,
        "lint": _tool_lint,
        "validate": _tool_validate,
        "set": _tool_set_values,
    }
    for line in sys.stdin:
        request = json.loads(line)
        try:
            answer = handlers[request["command"]](request["payload"])
        except Exception as exc:
            answer = {"crash": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    _tool_main()
