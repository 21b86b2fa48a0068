"""The layers of both packages (docs/architecture.md). Every import -- also the ones inside
functions, which hide cycles from Python but not from a reader -- goes to the same layer or a lower
one, and the module graph has no cycle:

* `orchestrator/`: spec -> plan -> track -> run -> search, report -> cli (its sub-packages);
* `fdp/`: base (config, runtime, metrics, stats, plots) -> data (`fdp/data/`) -> model (model,
  losses, dynamic_image, variants, profiles) -> train (train, baselines, objective, memory);
* between packages: fdp -> orchestrator -> bench, and fdp imports no Ray, MLflow or Optuna;
* the whole repository (fdp + orchestrator + bench) has no import cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PKG = REPO / "orchestrator"
FDP = REPO / "fdp"
# a layer may import from layers of lower rank (and from its own); equal ranks do not see each other
RANK = {"spec": 0, "plan": 1, "track": 2, "run": 3, "search": 4, "report": 4, "cli": 5}
FDP_RANK = {"base": 0, "data": 1, "model": 2, "train": 3}
# the layer of each top-level module or sub-package of fdp (a new one must be given its layer here)
FDP_LAYER = {
    "config": "base", "runtime": "base", "metrics": "base", "stats": "base", "plots": "base", "machine": "base",
    "dynamic_image": "base",  # the ground-truth target: arithmetic on frames, used by data (contact sheet) and model
    "data": "data", "features": "data",
    "fold": "base",  # the fold's split and result: plain data every layer passes around
    "model": "model", "authors_model": "model", "losses": "model", "profiles": "model",
    "variants": "train",  # a variant names its method and is checked against it (fdp.methods)
    "runner": "train", "methods": "train", "train": "train", "objective": "train",
    "readouts": "train", "memory": "train", "pooling": "train", "test_selected": "train",
}
# per package: (layer of the part below the package name, rank of a layer)
LAYERS = {"orchestrator": ({k: k for k in RANK}, RANK), "fdp": (FDP_LAYER, FDP_RANK)}
# packages import downward only: the science, the system, the measurements
PACKAGE_RANK = {"fdp": 0, "orchestrator": 1, "bench": 2}
FDP_FORBIDDEN = ("ray", "mlflow", "optuna")  # the science runs without the system's libraries


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(*packages: str) -> dict[str, Path]:
    return {module_name(p): p for package in packages for p in sorted((REPO / package).rglob("*.py"))}


def imported_names(path: Path, name: str) -> set[str]:
    """Every dotted name `path` (module `name`) imports, anywhere in it: `import a.b` gives a.b,
    `from a import b` gives a and a.b (b may be a module), relative imports resolved."""
    out: set[str] = set()
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            out.update([base] + [f"{base}.{a.name}" for a in node.names])
    return out


def imports_of(path: Path, name: str, known: set[str]) -> set[str]:
    """The modules of `known` that `path` (module `name`) imports, anywhere in it."""
    return {t for t in imported_names(path, name) if t in known} - {name}


def graph(*packages: str) -> dict[str, set[str]]:
    mods = modules(*packages)
    return {m: imports_of(p, m, set(mods)) for m, p in mods.items()}


def layer(module: str) -> str:
    """The layer of a module of orchestrator or fdp ("" for the package itself or an unlisted part)."""
    parts = module.split(".")
    return LAYERS[parts[0]][0].get(parts[1], "") if len(parts) > 1 else ""


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_every_module_lives_in_a_layer(package):
    stray = [m for m in modules(package) if m != package and not layer(m)]
    assert not stray, f"modules of {package} outside its layers {sorted(LAYERS[package][0])}: {stray}"


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_imports_only_go_down_the_layers(package):
    rank = LAYERS[package][1]
    wrong = [f"{m} ({layer(m)}) imports {t} ({layer(t)})" for m, ts in graph(package).items() for t in sorted(ts)
             if layer(m) and layer(t) and layer(t) != layer(m) and rank[layer(t)] >= rank[layer(m)]]
    assert not wrong, "\n".join(wrong)


def test_packages_import_downward_only():
    mods = modules(*PACKAGE_RANK)
    wrong = [f"{m} imports {t}" for m, p in mods.items() for t in sorted(imported_names(p, m))
             if t.split(".")[0] in PACKAGE_RANK and PACKAGE_RANK[t.split(".")[0]] > PACKAGE_RANK[m.split(".")[0]]]
    assert not wrong, "\n".join(wrong)


def test_fdp_imports_no_ray_mlflow_or_optuna():
    wrong = [f"{m} imports {t}" for m, p in modules("fdp").items() for t in sorted(imported_names(p, m))
             if t.split(".")[0] in FDP_FORBIDDEN]
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


def circles(g: dict[str, set[str]]) -> list[set[str]]:
    """The groups of modules that import each other (strongly connected, more than one module):
    every cycle of `g` lies within one of them, and each holds at least one cycle."""
    reach: dict[str, set[str]] = {}
    for m in g:
        seen, todo = set(), [m]
        while todo:
            for n in g.get(todo.pop(), ()):
                if n not in seen:
                    seen.add(n)
                    todo.append(n)
        reach[m] = seen
    groups = {frozenset(n for n in reach[m] if m in reach.get(n, ())) for m in g if m in reach[m]}
    return sorted((set(c) for c in groups if len(c) > 1), key=sorted)


def check_no_cycle(g: dict[str, set[str]]) -> None:
    """No cycle in `g`; a failure names each circle as one path through it."""
    found = circles(g)
    assert not found, "\n".join(" -> ".join(find_cycle({m: g[m] & c for m in c})) for c in found)


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_the_import_graph_has_no_cycle(package):
    check_no_cycle(graph(package))


def test_the_repository_has_no_import_cycle():
    check_no_cycle(graph(*PACKAGE_RANK))


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


def test_circles_are_the_groups_that_import_each_other():
    g = {"a": {"b"}, "b": {"a", "c"}, "c": {"d"}, "d": {"c"}, "e": {"a"}, "f": set()}
    assert circles(g) == [{"a", "b"}, {"c", "d"}]
    assert circles({"t": {"b"}, "b": {"x"}, "x": {"t"}}) == [{"t", "b", "x"}]  # through a third module


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
