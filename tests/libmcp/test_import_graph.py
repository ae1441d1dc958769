"""libmcp's modules import each other in one direction only: no cycles, so each can be read on its own."""

from __future__ import annotations

import ast
from pathlib import Path

LIBMCP = Path(__file__).resolve().parents[2] / "libmcp"


def module_name(path: Path) -> str:
    parts = path.relative_to(LIBMCP.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The libmcp modules ``path`` imports, at any depth of the file (TYPE_CHECKING blocks included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("libmcp"):
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in modules else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in modules)
    return found


def test_no_libmcp_module_imports_itself_through_another() -> None:
    files = {module_name(path): path for path in LIBMCP.rglob("*.py")}
    modules = set(files)
    # The package's __init__ re-exports the public API: it may import anything.
    graph = {name: imports_of(path, modules) - {"libmcp"} for name, path in files.items() if name != "libmcp"}

    cycles = []
    state: dict[str, str] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = "open"
        for target in sorted(graph.get(name, ())):
            if state.get(target) == "open":
                cycles.append(" -> ".join([*trail[trail.index(target) :], target]))
            elif target not in state:
                visit(target, [*trail, target])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []
    assert "libmcp.server" not in graph["libmcp.observability"]
