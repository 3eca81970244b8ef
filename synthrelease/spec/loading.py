"""Loading a spec at the edge: YAML, SDV metadata, path resolution, readable errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from synthrelease.errors import SpecError
from synthrelease.spec.release import ReleaseSpec
from synthrelease.spec.sources import CsvSource, ParquetSource

_SDV_TYPES = {
    "numerical": "numerical",
    "categorical": "categorical",
    "boolean": "boolean",
    "datetime": "datetime",
}


def _merge_sdv_metadata(raw: dict[str, Any], base: Path) -> None:
    """Fill each column's ``type`` from an SDV metadata JSON (types only, never domains)."""
    schema = raw.get("schema")
    if not isinstance(schema, dict) or not schema.get("sdv_metadata"):
        return
    path = Path(schema["sdv_metadata"])
    path = path if path.is_absolute() else base / path
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SpecError(f"schema.sdv_metadata: cannot read {path}: {type(exc).__name__}") from None
    tables = meta.get("tables")
    table = next(iter(tables.values())) if isinstance(tables, dict) and tables else meta
    sdv_columns = table.get("columns", {}) if isinstance(table, dict) else {}
    columns = schema.setdefault("columns", {})
    for col, info in sdv_columns.items():
        sdtype = info.get("sdtype") if isinstance(info, dict) else None
        if sdtype not in _SDV_TYPES:
            raise SpecError(
                f"schema.sdv_metadata: column {col!r} has sdtype {sdtype!r}; supported: "
                + ", ".join(_SDV_TYPES)
            )
        entry = columns.setdefault(col, {})
        if not isinstance(entry, dict):
            raise SpecError(f"schema.columns.{col}: must be a mapping")
        entry.setdefault("type", _SDV_TYPES[sdtype])


def _resolve_paths(spec: ReleaseSpec, base: Path) -> ReleaseSpec:
    """Make relative paths relative to the spec file's folder."""

    def fix(p: Path) -> Path:
        return p if p.is_absolute() else (base / p).resolve()

    update: dict[str, Any] = {}
    if isinstance(spec.source, (CsvSource, ParquetSource)):
        update["source"] = spec.source.model_copy(update={"path": fix(spec.source.path)})
    hs = spec.holdout.source
    if isinstance(hs, (CsvSource, ParquetSource)):
        update["holdout"] = spec.holdout.model_copy(
            update={"source": hs.model_copy(update={"path": fix(hs.path)})}
        )
    update["workspace"] = spec.workspace.model_copy(update={"path": fix(spec.workspace.path)})
    if "://" not in spec.store.uri and not Path(spec.store.uri).is_absolute():
        update["store"] = spec.store.model_copy(
            update={"uri": str((base / spec.store.uri).resolve())}
        )
    resolved = spec.model_copy(update=update)
    resolved._digest = spec.digest()
    return resolved


def format_validation_error(exc: ValidationError, prefix: str = "") -> str:
    """One line per problem, naming the key; never the offending value."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-"))
        loc = loc.replace("schema_", "schema")
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "missing":
            msg = "required key is missing"
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        lines.append(f"{prefix}{loc}: {msg}" if loc else f"{prefix}{msg}")
    return "; ".join(lines)


def parse_spec(raw: Any, *, base: Path = Path("."), origin: str = "spec") -> ReleaseSpec:
    """Validate a mapping (already parsed YAML) into a :class:`ReleaseSpec`."""
    if not isinstance(raw, dict):
        raise SpecError(f"{origin}: the spec must be a YAML mapping of keys")
    _merge_sdv_metadata(raw, base)
    try:
        spec = ReleaseSpec.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(f"{origin}: " + format_validation_error(exc)) from None
    return _resolve_paths(spec, base)


def load_spec(path: str | Path) -> ReleaseSpec:
    """Read and validate a YAML spec; relative paths are taken from the spec's folder."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"spec file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read spec file {path}: {type(exc).__name__}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise SpecError(f"{path}: not valid YAML{where}") from None
    return parse_spec(raw, base=path.resolve().parent, origin=str(path))
