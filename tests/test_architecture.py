"""The house rules of docs/architecture.md, checked: the core never imports gradio (every module
outside ui/, imported on its own in a fresh interpreter) and its modules import no circle."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import vae_explorer

PACKAGE = Path(vae_explorer.__file__).parent


def core_modules() -> list[str]:
    """Every module of the core: the package's modules except the ui subpackage."""
    names = [m.name for m in pkgutil.iter_modules([str(PACKAGE)]) if m.name != "ui"]
    assert {"loss", "model", "trainer", "session", "distributions"} <= set(names)
    return sorted(f"vae_explorer.{n}" for n in names if n != "__main__")


def test_no_core_module_imports_gradio():
    # One interpreter per module would take long; one interpreter imports each in turn and says
    # which one first brought gradio in (a module imported earlier cannot hide a later one).
    code = (
        "import importlib, sys\n"
        f"for name in {core_modules()!r}:\n"
        "    importlib.import_module(name)\n"
        "    if 'gradio' in sys.modules:\n"
        "        print(name); sys.exit(1)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{done.stdout.strip()} imports gradio {done.stderr[-500:]}"


def _imports(module: str) -> set[str]:
    """The core modules that ``module`` imports anywhere in its file (function-level too: a
    circle hidden inside a function is still a circle)."""
    path = PACKAGE / (module.split(".")[-1] + ".py")
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(f"vae_explorer.{node.module.split('.')[0]}")
            else:
                found.update(f"vae_explorer.{a.name}" for a in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("vae_explorer."):
            found.add(".".join(node.module.split(".")[:2]))
        elif isinstance(node, ast.Import):
            found.update(
                ".".join(a.name.split(".")[:2]) for a in node.names if a.name.startswith("vae_explorer.")
            )
    return found - {module}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of ``graph`` (a path that comes back to its start), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt] if nxt in path else [node, nxt]
            if nxt not in state and (found := visit(nxt, [*path, nxt])):
                return found
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start, [start])):
            return found
    return None


def test_the_cycle_finder_finds_a_planted_circle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_core_has_no_import_circle():
    modules = core_modules()
    graph = {m: {d for d in _imports(m) if d in modules} for m in modules}
    assert _cycle(graph) is None, " → ".join(_cycle(graph))
