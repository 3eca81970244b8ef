"""synthrelease: publish differentially private synthetic data, never the originals.

Consumers::

    import synthrelease
    df = synthrelease.load("adult")            # latest release, hashes verified
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd


def load(name: str, version: str = "latest", *, store: str | None = None) -> "pd.DataFrame":
    """The synthetic table of release ``name`` (``version`` or ``latest``), hash-verified.

    ``store`` is an fsspec URI; default ``$SYNTHRELEASE_STORE`` or ``./releases``.
    """
    from synthrelease.store import ReleaseStore, parse_ref

    name, parsed = parse_ref(name if version == "latest" else f"{name}@{version}")
    uri = store or os.environ.get("SYNTHRELEASE_STORE", "releases")
    return ReleaseStore(uri).load_table(name, parsed)


__all__ = ["load", "__version__"]
