"""The orchestrator's layers (docs/architecture.md): spec -> plan -> track -> run -> search, report
-> cli. Every import inside `orchestrator/` -- also the ones inside functions, which hide cycles
from Python but not from a reader -- goes to the same layer or a lower one, and the module graph
has no cycle. The science library `fdp/` has no cycle either, and imports neither the
orchestrator nor Ray, MLflow or Optuna."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "orchestrator"
FDP = PKG.parent / "fdp"
# a layer may import from layers of lower rank (and from its own); equal ranks do not see each other
RANK = {"spec": 0, "plan": 1, "track": 2, "run": 3, "search": 4, "report": 4, "cli": 5}


def module_name(path: Path, pkg: Path = PKG) -> str:
    parts = [pkg.name, *path.relative_to(pkg).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(pkg: Path = PKG) -> dict[str, Path]:
    return {module_name(p, pkg): p for p in sorted(pkg.rglob("*.py"))}


def imports_of(path: Path, name: str, known: set[str]) -> set[str]:
    """The orchestrator modules `path` imports, anywhere in it (module `name`)."""
    out: set[str] = set()
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        for t in targets:
            if t in known:
                out.add(t)
    out.discard(name)
    return out


def graph(pkg: Path = PKG) -> dict[str, set[str]]:
    mods = modules(pkg)
    return {m: imports_of(p, m, set(mods)) for m, p in mods.items()}


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_module_lives_in_a_layer():
    stray = [m for m in modules() if m != "orchestrator" and layer(m) not in RANK]
    assert not stray, f"modules outside the layer packages {sorted(RANK)}: {stray}"


def test_imports_only_go_down_the_layers():
    wrong = [f"{m} ({layer(m)}) imports {t} ({layer(t)})" for m, ts in graph().items() for t in sorted(ts)
             if layer(m) in RANK and layer(t) in RANK and layer(t) != layer(m) and RANK[layer(t)] >= RANK[layer(m)]]
    assert not wrong, "\n".join(wrong)


def find_cycle(g: dict[str, set[str]]) -> list[str]:
    """One cycle of `g` as a path [a, b, ..., a], or [] (iterative depth-first search)."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    for root in sorted(g):
        if state.get(root):
            continue
        stack = [(root, iter(sorted(g[root])))]
        path = [root]
        state[root] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
                path.pop()
            elif state.get(child) == 1:
                return path[path.index(child):] + [child]
            elif not state.get(child):
                state[child] = 1
                stack.append((child, iter(sorted(g.get(child, ())))))
                path.append(child)
    return []


@pytest.mark.parametrize("pkg", [PKG, FDP], ids=lambda p: p.name)
def test_the_import_graph_has_no_cycle(pkg):
    cycle = find_cycle(graph(pkg))
    assert not cycle, " -> ".join(cycle)


def test_the_science_library_imports_no_system():
    """fdp/ is usable from a notebook on its own (SPEC §1): no orchestrator, Ray, MLflow or Optuna,
    not even inside a function."""
    banned = ("orchestrator", "ray", "mlflow", "optuna")
    wrong = []
    for p in sorted(FDP.rglob("*.py")):
        for node in ast.walk(ast.parse(p.read_text(), str(p))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            wrong += [f"{p.relative_to(FDP.parent)}:{node.lineno} imports {n}" for n in names
                      if n.split(".")[0] in banned]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("g, cyclic", [
    ({"a": {"b"}, "b": {"c"}, "c": set()}, False),
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, True),
    ({"a": {"a2"}, "a2": set(), "b": {"b"}}, True),
])
def test_the_cycle_finder_finds_cycles(g, cyclic):
    assert bool(find_cycle(g)) == cyclic


def test_a_lazy_import_counts(tmp_path):
    """The cycle this test exists for was hidden in function bodies (spec -> search, jobs <-> tracking)."""
    src = tmp_path / "orchestrator" / "spec"
    src.mkdir(parents=True)
    f = src / "sweep.py"
    f.write_text("def load():\n    from orchestrator.search.study.study import resolve\n    return resolve\n")
    assert imports_of(f, "orchestrator.spec.sweep.sweep", {"orchestrator.search.study.study"}) == {"orchestrator.search.study.study"}


def test_one_scheduling_loop():
    """Sweeps and searches share one loop over running Ray tasks (`run/scheduler.py`): `ray.wait`
    is called in exactly one place of the orchestrator."""
    calls = [f"{p.relative_to(PKG)}:{node.lineno}" for p in PKG.rglob("*.py")
             for node in ast.walk(ast.parse(p.read_text())) if isinstance(node, ast.Call)
             and isinstance(node.func, ast.Attribute) and node.func.attr == "wait"
             and isinstance(node.func.value, ast.Name) and node.func.value.id == "ray"]
    assert len(calls) == 1 and calls[0].startswith("run/scheduler.py:"), calls
