"""The checks table of docs/validation.md, rendered from the registry.

``tests/test_check_registry.py`` fails when the table in the docs differs from
:func:`markdown_table`; ``python -m synthrelease.validators.checks.docs`` prints it, and
``... --write docs/validation.md`` replaces the table between the markers.
"""

from __future__ import annotations

import sys
from pathlib import Path

from synthrelease.validators.checks import REGISTRY, SUITES, owner, thresholds
from synthrelease.validators.checks.base import CheckDef, SuiteCheck

BEGIN = "<!-- checks table: generated from validators/checks/ (checks/docs.py); do not edit -->"
END = "<!-- end of checks table -->"
_HEADER = (
    "| check (figure) | spec `gate:` field | bound | default | what it measures | code |\n"
    "|---|---|---|---|---|---|"
)


def markdown_table(
    registry: tuple[CheckDef, ...] = REGISTRY, suites: tuple[SuiteCheck, ...] = SUITES
) -> str:
    """One row per gated figure (verdict order), then the suites; no trailing newline."""
    rows = [_HEADER]
    for t in thresholds(registry):
        check = owner(t.figure, registry)
        name = f"`{t.figure}`" + (" (only with `target`)" if check.needs_target else "")
        text = t.description + (f" — {t.notes}" if t.notes else "")
        module = check.compute.__module__.rsplit(".", 1)[-1]
        code = ", ".join(f"`{m}`" for m in (f"checks/{module}.py", *check.uses))
        rows.append(f"| {name} | `{t.field}` | {t.bound} | {t.default:g} | {text} | {code} |")
    for suite in suites:
        code = ", ".join(f"`{m}`" for m in suite.uses)
        default = "on" if suite.default else "off"
        rows.append(
            f"| `{suite.name}` | `{suite.field}` | — | {default} | {suite.description} | {code} |"
        )
    return "\n".join(rows)


def table_in(text: str) -> str | None:
    """The table between the markers in ``text``, or None without them."""
    if BEGIN not in text or END not in text:
        return None
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip()


def replace_table(text: str, table: str) -> str:
    """``text`` with the table between the markers replaced by ``table``."""
    if table_in(text) is None:
        raise ValueError("the markers of the checks table are missing")
    head, rest = text.split(BEGIN, 1)
    return f"{head}{BEGIN}\n{table}\n{END}{rest.split(END, 1)[1]}"


def main(argv: list[str]) -> int:
    if argv[:1] == ["--write"] and len(argv) == 2:
        path = Path(argv[1])
        path.write_text(replace_table(path.read_text(), markdown_table()))
        return 0
    if argv:
        sys.stderr.write("usage: python -m synthrelease.validators.checks.docs [--write FILE]\n")
        return 2
    sys.stdout.write(markdown_table() + "\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main(sys.argv[1:]))
