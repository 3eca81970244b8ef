"""Provenance of public metadata in the manifest, README and catalog; seeded noise is
flagged NOT PRIVATE first."""

from __future__ import annotations

import datetime as dt
import json

import yaml

from synthrelease.firewall import Artifact, Provenance, RowScanPass
from synthrelease.manifest import NEIGHBOURING, SEEDED_NOISE, build_manifest, release_readme
from synthrelease.spec import load_spec, parse_spec
from synthrelease.store import ReleaseStore, sha256_file
from synthrelease.store.catalog import render_catalog
from tests.store_helpers import T0, table_file

PRIVACY = {"epsilon": 3.0, "delta": 1e-6, "accountant": "zCDP (test)"}
GATE = {"passed": True, "checks": [{"name": "tvd_1way", "passed": True, "threshold": 0.1}]}


def _manifest(spec, **kw):
    return build_manifest(
        spec, privacy=PRIVACY, gate=GATE, tables=["synthetic/small.parquet"], created=T0, **kw
    )


def _spec(spec_factory, *, seeded=True, drafted=(), dp=(), values=None, estimate=None):
    raw = yaml.safe_load(spec_factory().read_text())
    if not seeded:
        raw["privacy"]["noise"] = "secure"
        raw["privacy"].pop("seed")
    for c in drafted:
        raw["schema"]["columns"][c]["provenance"] = "drafted"
    for c in dp:
        raw["schema"]["columns"][c]["provenance"] = "dp"
    raw["provenance"] = dict(values or {})
    if estimate:
        raw["provenance"]["domain_estimate"] = estimate
    return parse_spec(raw)


def _published_readme(manifest):
    return release_readme({**manifest, "version": "v1", "release_id": "small@v1"})


def test_manifest_records_domain_provenance_and_rules(spec_factory):
    spec = load_spec(spec_factory())
    m = _manifest(spec, run_spec_sha256="ab" * 32)
    assert m["provenance"]["columns"] == {
        "age": {"domain": "declared", "out_of_domain": "clip"},
        "score": {"domain": "declared", "out_of_domain": "clip"},
        "colour": {"domain": "declared", "out_of_domain": "drop"},
        "city": {"domain": "declared", "out_of_domain": "other"},
        "smoker": {"domain": "declared", "out_of_domain": "drop"},
    }
    assert (
        m["provenance"]["synthetic_rows"] == "declared" and m["provenance"]["delta"] == "declared"
    )
    assert m["provenance"]["not_dp"] is None and m["provenance"]["domain_estimate"] is None
    assert m["privacy"]["neighbouring"] == NEIGHBOURING and m["privacy"]["noise"] == "seeded"
    assert m["run_spec_sha256"] == "ab" * 32 and m["spec_sha256"] == spec.digest()
    assert m["schema"]["columns"]["age"]["provenance"] == "declared"
    assert _manifest(spec)["run_spec_sha256"] is None
    json.dumps(m)  # plain JSON


def test_seeded_noise_is_flagged_first_everywhere(spec_factory):
    m = _manifest(_spec(spec_factory, seeded=True))
    assert next(iter(m)) == "noise" and m["noise"] == SEEDED_NOISE == "seeded - NOT PRIVATE"
    assert "noise: seeded - NOT PRIVATE" in _published_readme(m).splitlines()[0]
    secure = _manifest(_spec(spec_factory, seeded=False))
    assert next(iter(secure)) == "noise" and secure["noise"] == "secure"
    assert "NOT PRIVATE" not in _published_readme(secure)
    assert _published_readme(secure).startswith("# small")


def test_drafted_domains_are_said_to_be_not_dp(spec_factory):
    spec = _spec(
        spec_factory,
        seeded=False,
        drafted=("age", "colour"),
        values={"synthetic_rows": "drafted", "delta": "default"},
    )
    m = _manifest(spec)
    prov = m["provenance"]
    assert prov["columns"]["age"]["domain"] == "drafted"
    assert prov["not_dp"]["columns"] == ["age", "colour"]
    assert prov["not_dp"]["values"] == ["synthetic_rows"]
    assert "WITHOUT differential privacy" in prov["not_dp"]["warning"]
    assert prov["delta"] == "default"
    assert "EXCEPT the domains marked 'drafted'" in m["privacy"]["scope"]
    readme = _published_readme(m)
    assert (
        "NOT differentially private: the domains (bounds / category sets) of `age`, "
        "`colour` were read from the original rows by `spec draft` without DP"
    ) in readme
    assert "`synthetic_rows` derived from the original rows" in readme


def test_dp_estimate_adds_to_the_end_to_end_guarantee(spec_factory):
    spec = _spec(
        spec_factory,
        seeded=False,
        dp=("age", "colour", "score", "city", "smoker"),
        values={"synthetic_rows": "default", "delta": "default"},
        estimate={"epsilon": 0.5, "delta": 1e-8, "run_id": "draft-x"},
    )
    m = _manifest(spec)
    assert m["provenance"]["domain_estimate"]["epsilon"] == 0.5
    assert m["provenance"]["domain_estimate"]["ledger_run_id"] == "draft-x"
    assert m["privacy"]["end_to_end"]["epsilon"] == 3.5
    assert m["privacy"]["epsilon"] == 3.0  # the release's own spend, as accounted
    readme = _published_readme(m)
    assert "estimated from the rows under (0.5, 1e-08)-DP" in readme
    assert "(3.5, 1.01e-06)-DP in total" in readme
    assert "NOT differentially private" not in readme


def _publish(store, tmp_path, manifest):
    table = table_file(tmp_path)
    return store.publish(
        "small",
        files={"synthetic/small.parquet": Artifact(table, Provenance.SYNTHETIC)},
        manifest=manifest,
        created=T0,
        readme=release_readme,
        row_scan=RowScanPass(frozenset({sha256_file(table)})),
    )


def test_catalog_entry_says_seeded_and_not_dp(spec_factory, tmp_path):
    store = ReleaseStore(str(tmp_path / "store"))
    _publish(store, tmp_path, _manifest(_spec(spec_factory, seeded=True, drafted=("colour",))))
    _publish(store, tmp_path, _manifest(_spec(spec_factory, seeded=False)))
    page = render_catalog(store)
    assert page.count("noise: seeded - NOT PRIVATE") == 1
    assert page.count("NOT DP: domains of colour read from the rows by spec draft without DP") == 1
    versions = store.versions("small")
    first = json.loads((tmp_path / "store" / "small" / versions[0] / "manifest.json").read_text())
    assert next(iter(first)) == "noise" and first["noise"] == SEEDED_NOISE
    readme = (tmp_path / "store" / "small" / versions[0] / "README.md").read_text()
    assert readme.splitlines()[0].startswith("**noise: seeded - NOT PRIVATE**")
    assert dt.datetime.fromisoformat(first["created"]) == T0
