"""The package's shape: imports point one way between layers, no cycles, small modules, no private names imported
across modules, and no mechanism named outside ``attention/`` (so a plugin gets the treatment a built-in gets)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "attnbench"

# Layer of every module (first matching prefix) and the layers each may import from (besides itself).
LAYERS = [
    ("attnbench.attention", "mechanisms"), ("attnbench.registry", "mechanisms"), ("attnbench.contract", "contract"),
    ("attnbench.measure", "measure"), ("attnbench.data", "data"), ("attnbench.store", "store"),
    ("attnbench.training", "training"), ("attnbench.spec", "spec"), ("attnbench.execute", "execute"),
    ("attnbench.report.analysis", "analysis"), ("attnbench.report", "render"),
    ("attnbench.api", "api"), ("attnbench.cli", "cli"), ("attnbench.commands", "cli"),
    ("attnbench.__main__", "cli"),
    ("attnbench", "mechanisms"),  # the package root re-exports the registry's public API
]
ALLOWED = {
    "mechanisms": set(),
    "contract": {"mechanisms"},
    "measure": {"mechanisms"},  # provenance records attnbench.__version__
    "data": set(),
    "store": set(),
    "training": {"mechanisms", "measure", "data"},
    "spec": {"mechanisms", "measure", "data", "training", "store"},
    "execute": {"mechanisms", "measure", "store", "spec"},
    "analysis": {"store"},  # pure functions of result rows
    "render": {"store", "analysis"},  # formats what analysis returns
    "api": {"mechanisms", "contract", "measure", "data", "store", "training", "spec", "execute", "analysis", "render"},
    "cli": {"mechanisms", "contract", "measure", "data", "store", "training", "spec", "execute", "analysis", "render",
            "api"},
}
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _layer(module: str) -> str:
    return next(layer for prefix, layer in LAYERS if module == prefix or module.startswith(prefix + "."))


def _imports(module: str, path: Path) -> list[tuple[str, list[str], int]]:
    """``(imported module, names, line)`` for every attnbench import in the file, at any depth."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(a.name, [], node.lineno) for a in node.names if a.name.split(".")[0] == "attnbench"]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "attnbench":
            names = [a.name for a in node.names]
            # "from attnbench.x import y" imports the submodule x.y when there is one
            subs = [f"{node.module}.{n}" for n in names if f"{node.module}.{n}" in MODULES]
            found += [(s, [], node.lineno) for s in subs]
            found.append((node.module, [n for n in names if f"{node.module}.{n}" not in MODULES], node.lineno))
    return found


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for module, path in MODULES.items():
        for target, _, _ in _imports(module, path):
            if target != module and target in MODULES:
                graph[module].add(target)
    return graph


def test_the_graph_sees_imports():
    """The checks below are not vacuous: known edges are found."""
    graph = _graph()
    assert "attnbench.registry" in graph["attnbench.contract"]
    assert "attnbench.spec.case" in graph["attnbench.execute.runner"]


def test_imports_point_down_between_layers():
    bad = []
    for module, path in MODULES.items():
        for target, _, line in _imports(module, path):
            if target in MODULES:
                src, dst = _layer(module), _layer(target)
                if src != dst and dst not in ALLOWED[src]:
                    bad.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {src} imports {dst} ({target})")
    assert not bad, "\n".join(bad)


def test_no_import_cycles():
    graph = _graph()
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]) if nxt in stack else nxt)
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for module in sorted(MODULES):
        if module not in state:
            visit(module, [module])
    assert not cycles, cycles


def test_module_size():
    """A smoke alarm, not a target: a module this long usually holds two roles. Split it by role; never compress."""
    long = {m: n for m, n in ((m, len(p.read_text().splitlines())) for m, p in MODULES.items()) if n > MAX_LINES}
    assert not long, ", ".join(f"{m}: {n} lines (> {MAX_LINES}); split it by role" for m, n in sorted(long.items()))


def test_analysis_imports_no_plotting_or_templating():
    """The analysis layer returns objects; drawing them (matplotlib) and templating (jinja2) are the renderers'."""
    bad = []
    for module, path in MODULES.items():
        if _layer(module) != "analysis":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            bad += [f"{module}:{node.lineno}: imports {n}" for n in names
                    if n.split(".")[0] in ("matplotlib", "jinja2")]
    assert not bad, "\n".join(bad)


def test_no_private_names_across_modules():
    bad = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text())
        aliases = set()
        for target, names, line in _imports(module, path):
            bad += [f"{module}:{line}: imports {target}.{n}" for n in names if n.startswith("_") and n != "__version__"]
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("attnbench"):
                aliases |= {a.asname or a.name for a in node.names if f"{node.module}.{a.name}" in MODULES}
            elif isinstance(node, ast.Import):
                aliases |= {a.asname or a.name for a in node.names if a.name.startswith("attnbench")}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                    and isinstance(node.value, ast.Name) and node.value.id in aliases):
                bad.append(f"{module}:{node.lineno}: uses {node.value.id}.{node.attr}")
    assert not bad, "\n".join(bad)


def _string_constants(path: Path) -> list[tuple[str, int]]:
    """String literals of a file that are not docstrings."""
    tree = ast.parse(path.read_text())
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    return [(n.value, n.lineno) for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings]


# The one place a mechanism name is a default outside attention/: the label reports measure ratios against
# (overridable with --baseline). It names a row label in results, not behaviour of the mechanism.
# The baseline of ratios, and the labels the MANO paper's claims compare (one constant each).
NAME_ALLOWED = {("attnbench.report.analysis.frame", "full"), ("attnbench.report.analysis.claims", "mano"),
                ("attnbench.report.analysis.claims", "full_naive"), ("attnbench.report.analysis.claims", "full"),
                ("attnbench.report.analysis.claims", "swin")}
# Rows written before schema 6 get the family their mechanism declared then: a frozen record of those names.
NAME_ALLOWED |= {("attnbench.store.migrate", name) for name in
                 ("full", "full_naive", "full_xformers", "planted_full", "swin", "neighborhood", "linear", "mano",
                  "mano_reference")}
# The seed four every family panel draws as references (one constant: row labels, not mechanism behaviour).
NAME_ALLOWED |= {("attnbench.report.analysis.families", name) for name in ("full", "swin", "linear", "mano")}


def test_no_mechanism_is_named_outside_attention():
    from attnbench.attention import BUILTIN_MODULES
    from attnbench.registry import list_configs

    names = set(BUILTIN_MODULES) | set(list_configs())
    bad = []
    for module, path in MODULES.items():
        if _layer(module) == "mechanisms":
            continue
        for value, line in _string_constants(path):
            if value in names and (module, value) not in NAME_ALLOWED:
                bad.append(f"{path.relative_to(PACKAGE.parent)}:{line}: names {value!r}")
    assert not bad, "\n".join(bad)
