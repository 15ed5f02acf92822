"""The import graph of spinexr: no circles between its modules, and the layering contracts of
pyproject.toml ``[tool.importlinter]`` kept. grimp counts imports inside function bodies too, so
a lazy import cannot hide a circle."""
from __future__ import annotations

import subprocess
import sys
from collections import deque
from pathlib import Path

import pytest

grimp = pytest.importorskip("grimp", reason="the dev extra (import-linter, grimp) is not installed")

ROOT = Path(__file__).resolve().parents[1]


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's components of more than one module (iterative: no recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def _a_cycle(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """One shortest circle through the first module of a component: [a, b, ..., a]."""
    start, members = component[0], set(component)
    parent: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for child in sorted(graph[node] & members):
            if child == start:
                path = [node]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                return [start, *reversed(path[:-1]), start] if node != start else [start, start]
            if child not in parent:
                parent[child] = node
                queue.append(child)
    return component


def _described(imports: grimp.ImportGraph, cycle: list[str]) -> str:
    steps = []
    for importer, imported in zip(cycle, cycle[1:]):
        lines = sorted(d["line_number"] for d in imports.get_import_details(
            importer=importer, imported=imported))
        steps.append(f"  {importer} -> {imported} (line {', '.join(map(str, lines))})")
    return "\n".join(steps)


def test_no_import_cycles_between_spinexr_modules():
    imports = grimp.build_graph("spinexr", cache_dir=None)
    graph = {m: set(imports.find_modules_directly_imported_by(m)) for m in imports.modules}
    cycles = [_a_cycle(graph, c) for c in _strongly_connected(graph)]
    assert not cycles, "import cycles (move the shared piece down a layer):\n" + "\n".join(
        _described(imports, c) for c in cycles)


def test_the_cycle_finder_finds_and_describes_a_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}}
    assert _strongly_connected(graph) == [["a", "b", "c"]]
    assert _a_cycle(graph, ["a", "b", "c"]) == ["a", "b", "c", "a"]


def test_import_linter_contracts_are_kept():
    lint = Path(sys.executable).with_name("lint-imports")
    if not lint.exists():
        pytest.skip("lint-imports is not installed (the dev extra)")
    run = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
