"""Owner-only files and folders (0700 / 0600): how everything private is written.

Base layer: the workspace, the report writers and Data Docs all use it.
"""

from __future__ import annotations

import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) owner-only; tighten it if it already exists."""
    missing = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    for folder in reversed(missing):
        folder.mkdir(mode=DIR_MODE, exist_ok=True)
        os.chmod(folder, DIR_MODE)
    os.chmod(path, DIR_MODE)
    return path


def tighten(path: Path) -> Path:
    """Make a file or a whole tree written by a library owner-only."""
    if path.is_dir():
        os.chmod(path, DIR_MODE)
        for child in path.rglob("*"):
            os.chmod(child, DIR_MODE if child.is_dir() else FILE_MODE)
    elif path.exists():
        os.chmod(path, FILE_MODE)
    return path
