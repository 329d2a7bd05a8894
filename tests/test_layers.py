"""The layering rules of docs/design.md, read from the source (ast), not from a list of files.

Layers, lowest first; a module may import its own package and packages of lower rank only:

    util                                  checks, pytrees
    regularizers < nn < analysis          the techniques (pure functions on pytrees)
    data                                  offline datasets (imports util only)
    core                                  task, sweep, streams, checkpoints, runtime
    tasks                                 task builders on the core and the techniques
    experiments                           kit, runner, one module per result
    cli, __main__                         the front door

Techniques never import the core, data, tasks or above; the core never imports a technique,
data loaders, tasks, experiments or the CLI. A private module (``_name.py``) is imported only
from its own package.
"""

import ast
import pathlib

ROOT = pathlib.Path(__file__).parents[1] / "jreg"

RANK = {
    "util": 0,
    "regularizers": 1,
    "nn": 2,
    "analysis": 3,
    "data": 1,
    "core": 1,
    "tasks": 5,
    "experiments": 6,
    "cli": 7,
    "__main__": 8,
}
#: Packages of equal or lower rank that a package must still not import.
FORBIDDEN = {
    "data": {"regularizers", "nn", "analysis", "core"},
    "core": {"regularizers", "nn", "analysis", "data"},
    "regularizers": {"data", "core"},
    "nn": {"data", "core"},
    "analysis": {"data", "core"},
}


def _modules() -> dict[str, pathlib.Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        out[".".join(p for p in parts if p != "__init__") or "__init__"] = path
    return out


def _imports() -> dict[str, set[str]]:
    """Module (dotted, without ``jreg.``) -> the jreg modules it imports, anywhere in it."""
    mods = _modules()
    graph = {}
    for name, path in mods.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("jreg"):
                base = node.module.removeprefix("jreg").removeprefix(".")
                for a in node.names:  # `from jreg.core import train` imports jreg.core.train
                    sub = f"{base}.{a.name}" if base else a.name
                    deps.add(sub if sub in mods else base)
            elif isinstance(node, ast.Import):
                deps |= {
                    a.name.removeprefix("jreg.") for a in node.names if a.name.startswith("jreg.")
                }
        graph[name] = {d for d in deps if d}
    return graph


def _top(name: str) -> str:
    return name.split(".")[0]


def test_no_import_cycle():
    graph = _imports()
    state, cycles = {}, []

    def visit(u, path):
        state[u] = "open"
        for v in sorted(graph.get(u, ())):
            if v not in graph:
                continue
            if state.get(v) == "open":
                cycles.append(path[path.index(v) :] + [v])
            elif v not in state:
                visit(v, path + [v])
        state[u] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert cycles == [], cycles


def test_every_import_points_down():
    bad = []
    for module, deps in _imports().items():
        top = _top(module)
        if top == "__init__":
            continue
        for d in deps:
            other = _top(d)
            if other == top:
                continue
            if RANK[other] > RANK[top] or other in FORBIDDEN.get(top, ()):
                bad.append((module, d))
    assert bad == [], bad


def test_private_modules_stay_in_their_package():
    bad = []
    for module, deps in _imports().items():
        for d in deps:
            *pkg, last = d.split(".")
            if last.startswith("_") and not last.startswith("__") and pkg != module.split(".")[:-1]:
                if ".".join(pkg) != module:  # a package's __init__ may import its own privates
                    bad.append((module, d))
    assert bad == [], bad


def test_every_package_has_a_rank():
    """A new top-level package must be placed in the layers (else the rules skip it)."""
    assert {_top(m) for m in _modules()} - {"__init__"} == set(RANK)


def test_module_sizes():
    """Small modules: the library's at most 350 lines, an experiment's at most 250."""
    too_long = []
    for name, path in _modules().items():
        n = len(path.read_text().splitlines())
        is_experiment = name.startswith("experiments.") and name.split(".")[1] in {
            "classic",
            "implicit",
            "applications",
        }
        if n > (250 if is_experiment else 350):
            too_long.append((name, n))
    assert too_long == [], too_long


def test_the_rules_catch_an_upward_import(tmp_path, monkeypatch):
    """The rules are not vacuous: a technique importing the core is reported."""
    fake = tmp_path / "jreg"
    for path in _modules().values():
        target = fake / path.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path.read_text())
    (fake / "regularizers" / "bad.py").write_text("from jreg.core import train\n")
    monkeypatch.setattr(__import__(__name__), "ROOT", fake)
    graph = _imports()
    assert "core.train" in graph["regularizers.bad"]
    try:
        test_every_import_points_down()
    except AssertionError as e:
        assert "regularizers.bad" in str(e)
    else:
        raise AssertionError("the upward import was not reported")
