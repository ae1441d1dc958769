"""The packages import only downwards, so the tree shows the architecture (docs/ARCHITECTURE.md).

libmcp is the protocol library; services run on it; fleet (the CLI, registry, generator) drives them;
harness holds the stand-ins shared by tests and bench, which never import each other. Every import
statement is read with ``ast``, including the ones inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from harness.processes import REPO_ROOT

FORBIDDEN = {
    "libmcp": {"services", "fleet", "harness", "tests", "bench"},
    "services": {"fleet", "harness", "tests", "bench"},
    "fleet": {"harness", "tests", "bench"},
    "harness": {"tests", "bench", "fleet"},
    "tests": {"bench"},
    "bench": {"tests"},
}


def imported_packages(path: Path) -> set[str]:
    """The top-level package of every absolute import in one file."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def crossings(package: str) -> list[str]:
    return [
        f"{path.relative_to(REPO_ROOT)} imports {', '.join(sorted(wrong))}"
        for path in sorted((REPO_ROOT / package).rglob("*.py"))
        if (wrong := imported_packages(path) & FORBIDDEN[package])
    ]


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_package_imports_nothing_above_it_or_beside_it(package: str) -> None:
    assert (REPO_ROOT / package / "__init__.py").exists()
    assert crossings(package) == []


def test_the_check_sees_imports_inside_functions_and_from_imports(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import os.path\nfrom . import sibling\n\ndef late():\n    from bench.loadgen import run_load\n"
    )

    assert imported_packages(sample) == {"os", "bench"}


def test_services_holds_only_the_five_services() -> None:
    modules = {path.name for path in (REPO_ROOT / "services").iterdir() if path.name != "__pycache__"}

    assert modules == {"__init__.py", "postgres", "fetch", "filesystem", "github", "monitoring"}
