"""The leak firewall: what may enter a release, checked before it becomes visible.

Every file handed to the store carries a :class:`Provenance`:

- ``synthetic``: a table sampled from the DP generator (Parquet only). It must also have
  passed the row scan (:mod:`synthrelease.private.rowscan`): a :class:`RowScanPass`
  naming its exact bytes.
- ``trained-on-synthetic``: a model trained on a synthetic table *of the same release*
  (ONNX only). Its card names that table by sha256, and the firewall re-trains the model
  from those bytes and refuses it unless the ONNX bytes come out identical: the model is
  then provably a function of the DP output, hence covered by DP's post-processing
  property. A model fitted on the real rows cannot pass.
- ``metadata``: public metadata written by our code (JSON, Markdown, HTML, text).
- ``dp-generator``: the fitted DP generator (``generator.json`` + numeric ``.npz``), only
  when the spec opts in (``publish.generator: true``).

Anything else is refused: a file without provenance, a path that escapes the release,
pickles (by name or by content), and any file type not listed for its provenance.
This module is public-side: it never sees sensitive rows.
"""

from __future__ import annotations

import enum
import hashlib
import io
import json
import logging
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synthrelease.errors import FirewallError
from synthrelease.models.train import reproduce

log = logging.getLogger(__name__)


class Provenance(str, enum.Enum):
    SYNTHETIC = "synthetic"
    TRAINED_ON_SYNTHETIC = "trained-on-synthetic"
    METADATA = "metadata"
    DP_GENERATOR = "dp-generator"


ALLOWED_SUFFIXES: Mapping[Provenance, frozenset[str]] = {
    Provenance.SYNTHETIC: frozenset({".parquet"}),
    Provenance.TRAINED_ON_SYNTHETIC: frozenset({".onnx"}),
    Provenance.METADATA: frozenset({".json", ".md", ".html", ".txt"}),
    Provenance.DP_GENERATOR: frozenset({".json", ".npz"}),
}
PICKLE_SUFFIXES = frozenset(
    {".pkl", ".pickle", ".joblib", ".dill", ".pt", ".pth", ".ckpt", ".sav", ".bin", ".npy"}
)
RESERVED = frozenset({"manifest.json", "README.md", "LATEST", "history.json", "index.html"})
REL_RE = re.compile(
    r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}(/[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}){0,7}$"
)
ONNX_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml"})
CARD_NAME = "card.json"


@dataclass(frozen=True)
class Artifact:
    """A local file bound for a release, with where it came from."""

    path: Path
    provenance: Provenance


@dataclass(frozen=True)
class RowScanPass:
    """Proof that the row scan found no copied real rows in these exact table bytes
    (sha256 values). Produced only by :func:`synthrelease.private.rowscan.scan_tables`."""

    tables: frozenset[str]


@dataclass(frozen=True)
class Clearance:
    """What the firewall let through: sha256 and provenance of every file."""

    files: Mapping[str, str]
    provenance: Mapping[str, str]
    models: tuple[str, ...] = field(default=())


def sha256_path(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_relpath(rel: str) -> str:
    """A release-relative path: plain names, no '..', no hidden or reserved files."""
    if not isinstance(rel, str) or not REL_RE.match(rel) or ".." in rel.split("/"):
        raise FirewallError(
            f"refused file name {rel!r}: letters, digits, '_-.' and '/' only, "
            "no '..', no leading dot"
        )
    if rel in RESERVED:
        raise FirewallError(f"refused file {rel!r}: the store writes it itself")
    return rel


def inspect_artifacts(
    files: Mapping[str, Any],
    *,
    row_scan: RowScanPass | None,
    allow_generator: bool = False,
) -> Clearance:
    """Check every file for a release; raise :class:`FirewallError` on the first refusal."""
    hashes: dict[str, str] = {}
    provenance: dict[str, str] = {}
    for rel, artifact in files.items():
        check_relpath(rel)
        if not isinstance(artifact, Artifact) or not isinstance(artifact.provenance, Provenance):
            raise FirewallError(
                f"refused {rel!r}: it carries no provenance (wrap it in "
                "synthrelease.firewall.Artifact(path, Provenance.X))"
            )
        prov = artifact.provenance
        _check_type(rel, artifact.path, prov, allow_generator=allow_generator)
        hashes[rel] = sha256_path(artifact.path)
        provenance[rel] = prov.value
    tables = {rel for rel, p in provenance.items() if p == Provenance.SYNTHETIC.value}
    for rel in sorted(tables):
        if row_scan is None or hashes[rel] not in row_scan.tables:
            raise FirewallError(
                f"refused {rel!r}: no passing row scan against the sensitive rows covers it"
            )
    models = tuple(
        sorted(rel for rel, p in provenance.items() if p == Provenance.TRAINED_ON_SYNTHETIC.value)
    )
    for rel in models:
        _check_model_lineage(rel, files, hashes, provenance)
    log.info("firewall cleared %d files", len(hashes))
    return Clearance(files=hashes, provenance=provenance, models=models)


# ---------------------------------------------------------------------------- types
def _check_type(rel: str, path: Path, prov: Provenance, *, allow_generator: bool) -> None:
    suffix = Path(rel).suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        raise FirewallError(
            f"refused {rel!r}: pickles and opaque binary formats are never published"
        )
    if prov is Provenance.DP_GENERATOR:
        if not allow_generator:
            raise FirewallError(
                f"refused {rel!r}: the fitted DP generator is private unless the spec opts in "
                "(publish.generator: true)"
            )
        if not rel.startswith("generator/"):
            raise FirewallError(f"refused {rel!r}: generator files belong under generator/")
    if suffix not in ALLOWED_SUFFIXES[prov]:
        raise FirewallError(
            f"refused {rel!r}: file type {suffix or '(none)'!r} is not allowed for "
            f"{prov.value} artifacts (allowed: {', '.join(sorted(ALLOWED_SUFFIXES[prov]))})"
        )
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise FirewallError(f"refused {rel!r}: cannot read it ({type(exc).__name__})") from None
    if _looks_pickled(data):
        raise FirewallError(f"refused {rel!r}: its content is a pickle")
    checker = {".parquet": _parquet, ".onnx": _onnx, ".npz": _npz, ".json": _json}.get(
        suffix, _text
    )
    checker(rel, data)


def _looks_pickled(data: bytes) -> bool:
    return len(data) > 2 and data[0] == 0x80 and 2 <= data[1] <= 5


def _parquet(rel: str, data: bytes) -> None:
    import pyarrow.parquet as pq

    if not (data[:4] == b"PAR1" and data[-4:] == b"PAR1"):
        raise FirewallError(f"refused {rel!r}: not a Parquet file")
    try:
        pq.read_metadata(io.BytesIO(data))
    except Exception:
        raise FirewallError(f"refused {rel!r}: not a readable Parquet file") from None


def _onnx(rel: str, data: bytes) -> None:
    import onnx

    try:
        model = onnx.load_model_from_string(data)
    except Exception:
        raise FirewallError(f"refused {rel!r}: not an ONNX model") from None
    domains = {op.domain for op in model.opset_import} | {n.domain for n in model.graph.node}
    if not domains <= ONNX_DOMAINS:
        raise FirewallError(f"refused {rel!r}: uses custom operator domains")
    for tensor in model.graph.initializer:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            raise FirewallError(f"refused {rel!r}: references external tensor data")


def _npz(rel: str, data: bytes) -> None:
    import numpy as np

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = zf.namelist()
        if not names or not all(n.endswith(".npy") and "/" not in n for n in names):
            raise ValueError("unexpected members")
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            for key in npz.files:
                if npz[key].dtype.kind not in "biufc":
                    raise ValueError("non-numeric array")
    except FirewallError:
        raise
    except Exception:
        raise FirewallError(f"refused {rel!r}: not a numeric-only .npz archive") from None


def _text(rel: str, data: bytes) -> None:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise FirewallError(f"refused {rel!r}: not UTF-8 text") from None


def _json(rel: str, data: bytes) -> None:
    _text(rel, data)
    try:
        json.loads(data)
    except ValueError:
        raise FirewallError(f"refused {rel!r}: not valid JSON") from None


# ---------------------------------------------------------------------------- models
def _check_model_lineage(
    rel: str, files: Mapping[str, Any], hashes: Mapping[str, str], provenance: Mapping[str, str]
) -> None:
    """The model must re-train, byte for byte, from a synthetic table of this release."""
    card_rel = f"{rel.rsplit('/', 1)[0]}/{CARD_NAME}" if "/" in rel else CARD_NAME
    if provenance.get(card_rel) != Provenance.METADATA.value:
        raise FirewallError(f"refused {rel!r}: no model card ({card_rel}) names its training data")
    try:
        card = json.loads(Path(files[card_rel].path).read_text())
        table_rel = card["training_data"]["table"]
        table_sha = card["training_data"]["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        raise FirewallError(f"refused {rel!r}: its model card is unreadable") from None
    if (
        provenance.get(table_rel) != Provenance.SYNTHETIC.value
        or hashes.get(table_rel) != table_sha
    ):
        raise FirewallError(
            f"refused {rel!r}: its card does not name a synthetic table of this release "
            "as its training data"
        )
    rebuilt = reproduce(card, Path(files[table_rel].path))
    if hashlib.sha256(rebuilt).hexdigest() != hashes[rel]:
        raise FirewallError(
            f"refused {rel!r}: it is not reproducible from the synthetic table {table_rel!r} "
            "(a model must be trained on the release's synthetic data only)"
        )
