"""The import rules of docs/design.md, read from the source: no cycle, no upward import."""

import ast
import pathlib

ROOT = pathlib.Path(__file__).parents[1] / "jreg"

#: Techniques: pure functions on pytrees; they never import the training core or above.
TECHNIQUES = {"penalties", "transforms", "losses", "metrics", "schedules", "models"}
#: The training core never imports experiments, the CLI, the runtime or data loaders.
CORE = {"train", "_loop", "_layout", "checkpoint", "streams"}
ABOVE_CORE = {"experiments", "cli", "runtime", "data", "_tfds", "__main__"}
ABOVE_TECHNIQUES = CORE | {"tasks", "nets", "widths"} | ABOVE_CORE


def _imports() -> dict[str, set[str]]:
    """Module (dotted, without ``jreg.``) -> the jreg modules it imports, anywhere in it."""
    graph = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(p for p in parts if p != "__init__") or "__init__"
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("jreg"):
                if node.module == "jreg":
                    deps |= {a.name for a in node.names}
                else:
                    deps.add(node.module.removeprefix("jreg."))
            elif isinstance(node, ast.Import):
                deps |= {
                    a.name.removeprefix("jreg.") for a in node.names if a.name.startswith("jreg.")
                }
        graph[name] = deps
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


def test_no_upward_import():
    graph = _imports()
    bad = []
    for module, deps in graph.items():
        top = {_top(d) for d in deps}
        if _top(module) in TECHNIQUES:
            bad += [(module, d) for d in top & ABOVE_TECHNIQUES]
        if _top(module) in CORE:
            bad += [(module, d) for d in top & ABOVE_CORE]
    assert bad == [], bad


def test_the_rules_see_the_modules_they_name():
    """The rules above would pass vacuously on misspelled names: they must all exist."""
    tops = {_top(m) for m in _imports()}
    assert TECHNIQUES | CORE | {"experiments", "cli", "runtime", "data"} <= tops
