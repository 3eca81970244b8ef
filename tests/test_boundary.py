"""The trust boundary and the layers are checkable: few named readers of sensitive rows
(enforced at run time and scanned in the sources), imports only downward between the
layers, no import cycle, no Prefect in the library."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from synthrelease.private.table import TRUSTED_READERS

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ["synthrelease", "generators", "validators"]


def _sources(folders):
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            yield path.relative_to(ROOT).as_posix(), path.read_text()


def module_name(rel: str) -> str:
    """``generators/marginal/mst.py`` -> ``synthrelease.generators.marginal.mst``."""
    parts = rel[:-3].split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    if parts[0] != "synthrelease":
        parts = ["synthrelease", *parts]
    return ".".join(parts)


def _touches_rows(tree: ast.AST) -> bool:
    """Any way to the rows by name: ``.reveal``/``._frame``/``.random_access``/``.reveal_counts`` (codes), or those names as strings
    (``getattr(table, "reveal")``)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in (
            "reveal",
            "_frame",
            "random_access",
            "reveal_counts",
        ):
            return True
        if isinstance(node, ast.Constant) and node.value in (
            "reveal",
            "_frame",
            "random_access",
            "reveal_counts",
        ):
            return True
    return False


def test_only_trusted_modules_reveal_sensitive_rows():
    callers = {
        module_name(rel)
        for rel, text in _sources(LIBRARY + ["flows"])
        if _touches_rows(ast.parse(text))
    }
    assert callers, "the boundary test found no reader at all: it is not looking"
    assert callers <= TRUSTED_READERS, (
        f"untrusted modules read sensitive rows: {callers - TRUSTED_READERS}"
    )
    assert TRUSTED_READERS <= callers | {"synthrelease.private.table"}, "stale trusted readers"


def test_reveal_refuses_an_untrusted_library_module_even_through_getattr():
    """The run-time check: the caller's module, however it got hold of ``reveal``."""
    import types

    import pandas as pd
    import pytest

    from synthrelease.errors import PrivacyError
    from synthrelease.private.table import SensitiveTable

    table = SensitiveTable(pd.DataFrame({"a": [1]}), label="t")
    sneaky = types.ModuleType("synthrelease.validators.sneaky")
    exec("def peek(t):\n    return getattr(t, 're' + 'veal')()\n", sneaky.__dict__)
    with pytest.raises(PrivacyError, match="not a trusted reader"):
        sneaky.peek(table)
    trusted = types.ModuleType("synthrelease.private.sources")
    exec("def read(t):\n    return t.reveal()\n", trusted.__dict__)
    assert trusted.read(table).shape == (1, 1)


# The layers, lowest first: a module may import modules of its own layer or below.
LAYERS = {
    "base": (
        "synthrelease.owner_only",
        "synthrelease.errors",
        "synthrelease.log",
        "synthrelease.spec",
        "synthrelease.values",
        "synthrelease.private.table",
        "synthrelease.private.codes",
    ),
    "engines": ("synthrelease.generators", "synthrelease.validators"),
    "application": (
        "synthrelease.private",
        "synthrelease.pipeline",
        "synthrelease.run",
        "synthrelease.ledger",
        "synthrelease.store",
        "synthrelease.manifest",
        "synthrelease.firewall",
        "synthrelease.models",
        "synthrelease.planning",
    ),
    "entry points": ("synthrelease.cli", "synthrelease.flows", "synthrelease"),
}


def layer_of(module: str) -> int:
    best, rank = -1, None
    for i, prefixes in enumerate(LAYERS.values()):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), i
    assert rank is not None, f"{module} is in no layer"
    return rank


def _imports(tree: ast.AST) -> list[tuple[str, bool]]:
    """(imported module, inside a function) for every import of our own modules."""
    out = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                if child.module.startswith("synthrelease"):
                    names = (
                        [child.module]
                        if child.module != "synthrelease"
                        else [f"synthrelease.{a.name}" for a in child.names]
                    )
                    out.extend((n, inner) for n in names)
            elif isinstance(child, ast.Import):
                out.extend(
                    (a.name, inner) for a in child.names if a.name.startswith("synthrelease")
                )
            visit(child, inner)

    visit(tree, False)
    return out


def _graph() -> dict[str, list[tuple[str, bool]]]:
    return {
        module_name(rel): _imports(ast.parse(text)) for rel, text in _sources(LIBRARY + ["flows"])
    }


def test_imports_only_go_down_the_layers():
    upward = []
    for module, imports in _graph().items():
        if module == "synthrelease":  # the package's consumer API (load, load_model)
            continue
        for target, _ in imports:
            if layer_of(target) > layer_of(module):
                upward.append(f"{module} -> {target}")
    assert upward == []


def test_no_import_cycle_between_our_modules():
    graph = {m: {t for t, _ in imps} for m, imps in _graph().items()}
    known = set(graph)

    def resolve(target: str) -> str | None:  # "synthrelease.store" may name a package
        while target and target not in known:
            target = target.rpartition(".")[0]
        return target or None

    edges = {
        m: {r for t in ts if (r := resolve(t)) and r != m and not m.startswith(r + ".")}
        for m, ts in graph.items()
    }
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(node: str, path: list[str]) -> bool:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycle.extend(path[path.index(nxt) :] + [nxt] if nxt in path else [node, nxt])
                return True
            if state.get(nxt) is None and visit(nxt, path + [nxt]):
                return True
        state[node] = 2
        return False

    for start in sorted(edges):
        if state.get(start) is None and visit(start, [start]):
            break
    assert cycle == [], " -> ".join(cycle)


# Imports inside functions that keep a heavy third-party library (torch/opacus, jax,
# Prefect, SDV/SDMetrics, GX, sklearn/onnx) off the import path of light modules, or
# that must come after the environment is set: allowed, each listed here with a reason.
LAZY_OWN_IMPORTS = {
    "synthrelease.cli.release": "Prefect reads its settings at import: flows after env",
    "synthrelease.generators": "the DP-SGD generator pulls in torch: imported on first use",
    "synthrelease": "the package's consumer API (load, load_model): every import of any "
    "submodule runs this file, so it must not import the store",
}


def test_no_function_level_imports_of_our_own_modules():
    found = sorted(
        {m for m, imps in _graph().items() for _, inner in imps if inner} - set(LAZY_OWN_IMPORTS)
    )
    assert found == [], f"function-level imports of our modules (to dodge a cycle?): {found}"


def test_library_does_not_import_prefect():
    offenders = []
    for rel, text in _sources(LIBRARY):
        for node in ast.walk(ast.parse(text)):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n == "prefect" or n.startswith("prefect.") for n in names):
                offenders.append(rel)
    assert offenders == []


def test_no_print_in_library_code():
    for rel, text in _sources(LIBRARY + ["flows"]):
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
                raise AssertionError(f"print() in {rel}:{node.lineno}")


def test_no_global_numpy_random_in_mechanisms():
    pattern = re.compile(
        r"np\.random\.(seed|rand|randn|randint|normal|choice|laplace|uniform|permutation|shuffle)\("
    )
    hits = [rel for rel, text in _sources(LIBRARY) if pattern.search(text)]
    assert hits == []
