"""synthrelease: publish differentially private synthetic data, never the originals.

Consumers::

    import synthrelease
    df = synthrelease.load("adult")            # latest release, hashes verified
    model = synthrelease.load_model("adult", model="income")   # ONNX, onnxruntime
    model.predict(df)
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from synthrelease.models.runtime import ReleasedModel
    from synthrelease.store import ReleaseStore


def _store(store: str | None) -> ReleaseStore:
    from synthrelease.store import ReleaseStore

    return ReleaseStore(store or os.environ.get("SYNTHRELEASE_STORE", "releases"))


def _ref(name: str, version: str) -> tuple[str, str]:
    from synthrelease.store import parse_ref

    return parse_ref(name if version == "latest" else f"{name}@{version}")


def load(
    name: str, version: str = "latest", *, store: str | None = None, allow_withdrawn: bool = False
) -> pd.DataFrame:
    """The synthetic table of release ``name`` (``version`` or ``latest``), hash-verified.

    ``store`` is an fsspec URI (a folder, ``s3://bucket/prefix``); default
    ``$SYNTHRELEASE_STORE`` or ``./releases``. A withdrawn version is refused unless
    ``allow_withdrawn``.
    """
    name, parsed = _ref(name, version)
    return _store(store).load_table(name, parsed, allow_withdrawn=allow_withdrawn)


def load_model(
    name: str,
    model: str | None = None,
    version: str = "latest",
    *,
    store: str | None = None,
    allow_withdrawn: bool = False,
) -> ReleasedModel:
    """A model published with release ``name`` (trained on its synthetic table only),
    hash-verified, as a :class:`~synthrelease.models.runtime.ReleasedModel`: ``predict``,
    ``predict_proba``, ``session`` (onnxruntime) and ``card``. ``model`` may be left out
    when the release has exactly one."""
    name, parsed = _ref(name, version)
    return _store(store).load_model(name, model, parsed, allow_withdrawn=allow_withdrawn)


__all__ = ["load", "load_model", "__version__"]
