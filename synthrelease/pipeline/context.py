"""A run's frozen context and its private folder.

``pin`` freezes the resolved spec into the run's private folder (``spec.json``, its
sha256 in ``run.json``) before the budget is reserved; every later step takes only that
folder as a :class:`PinnedRun` and reads the frozen copy, whatever the YAML file says by
then. The file names of a run folder live here, with the small I/O helpers the steps share.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthrelease.errors import (
    PrivacyError,
    SpecError,
    StepFailedError,
)
from synthrelease.generators.noise import TEST_NOISE_ENV
from synthrelease.owner_only import FILE_MODE
from synthrelease.private.workspace import RunPaths, Workspace
from synthrelease.spec import ReleaseSpec

log = logging.getLogger(__name__)


TOUCHED = "touched"


PRIVACY_FILE = "privacy.json"


FIGURES_FILE = "figures.json"


AUDIT_FILE = "audit.json"  # the one-run privacy audit's figures (public: no real row read)


VERDICT_FILE = "verdict.json"


DATA_DOCS_DIR = "data_docs"  # GX Data Docs, inside the run's private report folder


DOMAIN_FILE = "domain.json"


CHECKS_DIR = "checks"  # check_part outputs, merged into FIGURES_FILE


SPEC_FILE = "spec.json"  # the run's frozen, resolved spec


RUN_FILE = "run.json"  # run id, reservation, the frozen spec's sha256


FAILED = "failed"  # marker: a step failed after the first read (reason in FAILURE_FILE)


FAILURE_FILE = "failure.txt"


PUBLISHED_FILE = "published.json"


@dataclass(frozen=True)
class PinnedRun:
    """One run's frozen context: the spec as it was at ``reserve``, the run id, the
    reservation and the run's private folder. Every step after ``reserve`` takes this."""

    spec: ReleaseSpec
    run_id: str
    reservation: str
    spec_sha256: str
    paths: RunPaths

    @property
    def root(self) -> Path:
        return self.paths.root

    @property
    def failed(self) -> bool:
        return (self.root / FAILED).exists()

    @classmethod
    def load(cls, run_dir: str | Path) -> PinnedRun:
        """Read the frozen spec of the run in ``run_dir``; refuse one whose bytes no
        longer match the sha256 recorded at ``reserve``."""

        root = Path(run_dir)
        try:
            meta = json.loads((root / RUN_FILE).read_text())
            raw = (root / SPEC_FILE).read_bytes()
        except (OSError, ValueError):
            raise StepFailedError(f"run folder {root} holds no pinned run") from None
        if hashlib.sha256(raw).hexdigest() != meta.get("spec_sha256"):
            raise PrivacyError(f"the frozen spec of run {meta.get('run_id')} was changed")
        spec = ReleaseSpec.model_validate(json.loads(raw))
        spec._digest = meta["spec_digest"]
        return cls(
            spec=spec,
            run_id=meta["run_id"],
            reservation=meta.get("reservation", ""),
            spec_sha256=meta["spec_sha256"],
            paths=RunPaths(root),
        )


def new_run_id() -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{uuid.uuid4().hex[:8]}"


def run_paths(spec: ReleaseSpec, run_id: str) -> RunPaths:
    return Workspace(spec.workspace.path).ensure().run(run_id)


def write_json(path: Path, payload: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "w") as fh:
        json.dump(payload, fh, indent=2, default=str)


def write_bytes(path: Path, payload: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "wb") as fh:
        fh.write(payload)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def check_noise(spec: ReleaseSpec) -> None:
    """A seeded spec replays its noise for anyone who has it: refused unless the
    environment says this is a test (and then every public file says NOT PRIVATE)."""
    if spec.privacy.noise == "seeded" and os.environ.get(TEST_NOISE_ENV) != "1":
        raise SpecError(
            f"privacy.noise 'seeded' is for tests only (anyone with the spec can replay the "
            f"noise): use 'secure', or set {TEST_NOISE_ENV}=1 in a test environment"
        )


def pin(spec: ReleaseSpec, run_id: str) -> PinnedRun:
    """Freeze the resolved spec into the run's private folder (``spec.json``, its sha256
    in ``run.json``): every later step, in any engine, reads this copy."""

    check_noise(spec)
    paths = run_paths(spec, run_id)
    # key order kept: the schema's column order is part of the spec
    frozen = json.dumps(
        spec.model_dump(mode="json", by_alias=True, exclude_unset=True), indent=1
    ).encode()
    write_bytes(paths.root / SPEC_FILE, frozen)
    write_json(
        paths.root / RUN_FILE,
        {
            "run_id": run_id,
            "spec_digest": spec.digest(),
            "spec_sha256": hashlib.sha256(frozen).hexdigest(),
        },
    )
    return PinnedRun.load(paths.root)
