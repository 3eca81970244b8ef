"""The trust boundary is checkable: few named readers of sensitive rows; no Prefect in
the library."""

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


def test_only_trusted_modules_reveal_sensitive_rows():
    callers = {rel for rel, text in _sources(LIBRARY + ["flows"]) if re.search(r"\.reveal\(\)", text)}
    assert callers, "the boundary test found no reader at all: it is not looking"
    assert callers <= TRUSTED_READERS, f"untrusted modules read sensitive rows: {callers - TRUSTED_READERS}"


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
    pattern = re.compile(r"np\.random\.(seed|rand|randn|randint|normal|choice|laplace|uniform|permutation|shuffle)\(")
    hits = [rel for rel, text in _sources(LIBRARY) if pattern.search(text)]
    assert hits == []
