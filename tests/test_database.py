"""Counting inside PostgreSQL (issue 16): a SQL source whose rows never leave the
database reads exactly as the streaming path reads it, splits by a keyed coin per row,
releases end to end without a row through the streaming reader, and its row scan
refuses a copied row (on a real PostgreSQL server started here)."""

from __future__ import annotations

import datetime as dt
import secrets
from collections import Counter
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pytest
import yaml

from synthrelease import run
from synthrelease.errors import FirewallError
from synthrelease.generators.domain import Discretiser
from synthrelease.generators.marginal.data import ExactMarginals
from synthrelease.pipeline.context import DOMAIN_FILE
from synthrelease.private import database, ingest, sources
from synthrelease.private.domain import enforce_frame
from synthrelease.private.table import SensitiveTable
from synthrelease.spec import SqlSource, load_spec
from synthrelease.values import row_keys
from tests.conftest import SMALL_COLUMNS, make_table

pytestmark = pytest.mark.integration  # a real PostgreSQL server (scripts/ensure-postgres.sh)

COLUMNS = {
    **SMALL_COLUMNS,
    "grade": {"type": "categorical", "categories": ["1", "2", "3"]},
    "seen": {
        "type": "datetime",
        "lower": "2020-01-01T00:00:00",
        "upper": "2020-12-31T00:00:00",
        "nullable": True,
    },
    "weight": {"type": "numerical", "lower": 0, "upper": 1_000_000, "integer": True},
    'odd {name}: "x"': {  # a name and labels that must stay text in SQL
        "type": "categorical",
        "categories": ["x :y", "it's", '"q"', "{z}"],
        "nullable": True,
    },
    "level": {
        "type": "numerical",
        "lower": 0.0,
        "upper": 10.0,
        "edges": [1.0, 2.5, 7.0],
        "out_of_domain": "drop",
        "nullable": True,
    },
}
TYPES = {
    "age": "integer",
    "score": "double precision",
    "colour": "text",
    "city": "character varying",
    "smoker": "boolean",
    "grade": "integer",
    "seen": "timestamp",
    "weight": "bigint",
    "level": "numeric",
    'odd {name}: "x"': "text",
}


def hard_table(n: int, seed: int = 0) -> pd.DataFrame:
    """The small table, widened, with every rule's cases planted: nulls where not
    allowed, NaN and infinities, values outside the bounds and the categories, duplicates."""
    rng = np.random.default_rng(seed)
    frame = make_table(n, seed).astype(object)
    frame["grade"] = rng.integers(1, 5, n)  # 4 is not declared: dropped
    seen = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(-20, 380, n), unit="D")
    frame["seen"] = pd.Series([s.to_pydatetime() for s in seen], dtype=object)
    frame["weight"] = rng.integers(0, 1_000_000, n)
    frame["level"] = pd.Series(np.round(rng.uniform(-1, 11, n), 2), dtype=object)
    frame.loc[rng.random(n) < 0.02, "age"] = 150  # clipped
    frame.loc[rng.random(n) < 0.02, "age"] = None  # dropped (not nullable)
    frame.loc[rng.random(n) < 0.02, "score"] = np.inf  # clipped to 5
    frame.loc[rng.random(n) < 0.02, "score"] = -np.inf
    frame.loc[rng.random(n) < 0.02, "score"] = 9.0
    frame.loc[rng.random(n) < 0.02, "colour"] = "purple"  # dropped
    frame.loc[rng.random(n) < 0.02, "colour"] = None  # dropped
    frame.loc[rng.random(n) < 0.02, "smoker"] = None  # dropped
    frame.loc[rng.random(n) < 0.03, "seen"] = None  # nullable
    frame.loc[rng.random(n) < 0.03, "level"] = None  # nullable, and outside values dropped
    frame.loc[rng.random(n) < 0.01, "level"] = Decimal("1e400")  # beyond float8: inf, dropped
    frame.loc[rng.random(n) < 0.01, "level"] = Decimal("1e-400")  # below it: 0.0
    frame.loc[rng.random(n) < 0.01, "seen"] = dt.datetime(3000, 1, 1)  # beyond pandas: dropped
    odd = np.array(["x :y", "it's", '"q"', "{z}", "w", None], dtype=object)
    frame['odd {name}: "x"'] = odd[rng.integers(0, 6, n)]  # "w" is not declared: dropped
    clean = {
        "age": 40,
        "score": 0.5,
        "colour": "red",
        "city": "a",
        "smoker": True,
        "grade": 1,
        "seen": dt.datetime(2020, 3, 1),
        "weight": 123_456,
        "level": 3.3,
        'odd {name}: "x"': "it's",
    }
    for name, value in clean.items():  # a tenth of the rows: one row, repeated
        frame.loc[: n // 10 - 1, name] = value
    return frame.reset_index(drop=True)


def load(url: str, frame: pd.DataFrame, table: str) -> None:
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.execute(
            f"CREATE TABLE {table} ("
            + ", ".join('"' + n.replace('"', '""') + f'" {TYPES[n]}' for n in frame.columns)
            + ")"
        )
        with conn.cursor() as cur, cur.copy(f"COPY {table} FROM STDIN") as copy:
            for row in frame.itertuples(index=False):
                copy.write_row([None if _missing(v) else v for v in row])


def _missing(v: object) -> bool:
    return v is None or v is pd.NaT or (isinstance(v, float) and np.isnan(v))


def spec_for(tmp_path: Path, table: str, **overrides: object) -> Path:
    raw = {
        "name": "pg",
        "source": {"kind": "sql", "url_env": "SR_TEST_PG", "table": table},
        "schema": {"columns": COLUMNS},
        "privacy": {
            "epsilon": 3.0,
            "delta": 1e-6,
            "budget": {"epsilon": 100.0, "delta": 1e-3},
            "noise": "seeded",
            "seed": 7,
        },
        "generator": {"name": "mst", "params": {"bins": 16}},
        "holdout": {"fraction": 0.3},
        "synthetic_rows": 2000,
        "gate": {"max_tvd_1way": 0.5, "max_tvd_2way": 0.5, "max_exact_copy_excess": 0.5},
        "workspace": {"path": str(tmp_path / "ws")},
        "store": {"uri": str(tmp_path / "store")},
        **overrides,
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def streamed(source: SqlSource, columns: dict) -> tuple[pd.DataFrame, dict]:
    """The rows and the rule counts as the streaming path reads them."""
    chunks = list(sources.read_chunks(source, columns))
    frame, counts = enforce_frame(pd.concat(chunks, ignore_index=True), columns)
    return frame, counts


def test_the_database_reads_the_rows_as_the_streaming_path_does(pg_url, tmp_path, monkeypatch):
    monkeypatch.setenv("SR_TEST_PG", pg_url)
    load(pg_url, hard_table(3000), "hard")
    spec = load_spec(spec_for(tmp_path, "hard"))
    disc = Discretiser(spec.columns, default_bins=16)
    plan = database.plan(spec.source, spec.columns, disc, counts_only=True, fraction=0.3)
    assert plan is not None
    frame, counts = streamed(spec.source, spec.columns)
    with database.Session(plan, key=secrets.token_bytes(16)) as session:
        assert session.domain_counts() == counts  # every rule, counted in the database
        train_rows, holdout_rows = session.parts()
        assert train_rows + holdout_rows == len(frame)
        # both parts' samples, whole: the rows after the rules, as the streaming path has them
        whole = [session.sample(side, 10_000, spec.columns) for side in (0, 1)]
        assert len(whole[0]) == train_rows and len(whole[1]) == holdout_rows
        both = pd.concat(whole, ignore_index=True)
        assert Counter(row_keys(both, spec.columns)) == Counter(row_keys(frame, spec.columns))
        # the codes counted in the database: the training part's, as numpy counts them
        local = disc.encode(whole[0]).to_numpy().T
        counted = ExactMarginals(session.counted(label="t"), list(disc.sizes.values()))
        exact = ExactMarginals(local, list(disc.sizes.values()))
        d = len(disc.names)
        cliques = [(i,) for i in range(d)] + [(i, j) for i in range(d) for j in range(i + 1, d)]
        counted.prefetch(cliques[:5])
        for clique in [*cliques, (0, 3, 6), ()]:
            assert np.array_equal(counted.counts(clique), exact.counts(clique)), clique
        maps = [np.arange(s) // 2 for s in disc.sizes.values()]  # a compressed domain
        ccounted, cexact = counted.compressed(maps), exact.compressed(maps)
        for clique in cliques[:20]:
            assert np.array_equal(ccounted.counts(clique), cexact.counts(clique))


def test_the_split_is_an_independent_keyed_coin_per_row(pg_url, tmp_path, monkeypatch):
    monkeypatch.setenv("SR_TEST_PG", pg_url)
    frame = make_table(8000, seed=3)
    frame.iloc[:4000] = frame.iloc[0].to_numpy()  # half the rows: one row, repeated
    frame = frame.assign(
        grade=2,
        seen=dt.datetime(2020, 5, 1),
        weight=np.where(np.arange(8000) < 4000, 5, np.arange(8000)),
        level=1.5,
        **{'odd {name}: "x"': "x :y"},
    )
    load(pg_url, frame, "coins")
    spec = load_spec(spec_for(tmp_path, "coins"))
    disc = Discretiser(spec.columns, default_bins=16)
    plan = database.plan(spec.source, spec.columns, disc, counts_only=True, fraction=0.3)
    assert plan is not None
    shares = []
    for _ in range(2):
        with database.Session(plan, key=secrets.token_bytes(16)) as session:
            repeated = session._all(
                f"SELECT avg(side) FROM {database.ROWS} WHERE occ > 0 AND k = "
                f"(SELECT k FROM {database.ROWS} GROUP BY k ORDER BY count(*) DESC LIMIT 1)"
            )[0][0]
            shares.append(float(repeated))
            _, holdout = session.parts()
            sigma = np.sqrt(0.3 * 0.7 / 8000)
            assert abs(holdout / 8000 - 0.3) < 5 * sigma
    for share in shares:  # the 4000 copies of one row are split coin by coin
        assert abs(share - 0.3) < 5 * np.sqrt(0.3 * 0.7 / 4000)
    assert shares[0] != shares[1]  # another key, another split


def test_a_release_counts_in_the_database_and_reads_no_row_out(pg_url, tmp_path, monkeypatch):
    monkeypatch.setenv("SR_TEST_PG", pg_url)
    load(pg_url, hard_table(4000, seed=1), "release")

    def refuse(*args, **kwargs):
        raise AssertionError("a row was streamed out of the database")

    monkeypatch.setattr(ingest, "read_chunks", refuse)
    monkeypatch.setattr(sources, "_raw_chunks", refuse)
    spec_path = spec_for(tmp_path, "release")
    with run.opened(str(spec_path)) as run_dir:
        for step in ("reserve", "train", "sample", "check", "gate", "publish", "finish"):
            result = getattr(run, step)(run_dir)
        domain = yaml.safe_load((Path(run_dir) / DOMAIN_FILE).read_text())
    assert getattr(result, "release_id", None), "the release did not publish"
    assert domain["source"]["colour"]["dropped"] > 0 and domain["source"]["age"]["clipped"] > 0


def test_the_row_scan_in_the_database_refuses_a_copied_row(pg_url, tmp_path, monkeypatch):
    monkeypatch.setenv("SR_TEST_PG", pg_url)
    real = hard_table(3000, seed=2)
    load(pg_url, real, "scan")
    spec = load_spec(spec_for(tmp_path, "scan"))
    disc = Discretiser(spec.columns, default_bins=16)
    plan = database.plan(spec.source, spec.columns, disc, counts_only=True, fraction=0.3)
    assert plan is not None
    root = tmp_path / "source"
    ws = tmp_path / "split"
    ws.mkdir()
    paths = (ws / "train.parquet", ws / "holdout.parquet")
    with database.Session(plan, key=secrets.token_bytes(16)) as session:
        database.ingest(
            session, root=root, label="t", columns=spec.columns, sample_rows=500, sample_paths=paths
        )
    samples = [SensitiveTable(pd.read_parquet(p), label="s") for p in paths]
    kept, _ = enforce_frame(real, spec.columns)
    kept["seen"] = pd.to_datetime(kept["seen"], format="mixed")  # clipped ones come as text
    fresh = kept.copy()
    fresh["weight"] = np.arange(len(fresh)) * 7 + 3  # no real row
    fresh_path = tmp_path / "fresh.parquet"
    fresh.head(2000).to_parquet(fresh_path)

    def scan(path: Path) -> object:
        return database.scan_tables(
            {"synthetic.parquet": path},
            plan_=plan,
            root=root,
            columns=spec.columns,
            train_sample=samples[0],
            holdout_sample=samples[1],
        )

    assert scan(fresh_path).tables  # passes
    copied = pd.concat([fresh.head(1999), kept.iloc[[-1]]], ignore_index=True)  # one real row
    copied_path = tmp_path / "copied.parquet"
    copied.to_parquet(copied_path)
    with pytest.raises(FirewallError, match="a distinctive real row"):
        scan(copied_path)
    keys = row_keys(kept, spec.columns)
    common = int(np.flatnonzero(keys == Counter(keys).most_common(1)[0][0])[0])
    assert (keys == keys[common]).sum() > 100  # a row held many times: not distinctive
    many = kept.iloc[[common] * 2000].reset_index(drop=True)  # its copies: beyond chance
    many_path = tmp_path / "many.parquet"
    many.to_parquet(many_path)
    with pytest.raises(FirewallError, match="more copies than chance"):
        scan(many_path)
    dsn = pg_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:  # the source changes after training:
        conn.execute("UPDATE scan SET level = 9.5 WHERE weight = 123456")  # the 300 copies
    with pytest.raises(FirewallError, match="no longer holds"):
        scan(fresh_path)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("UPDATE scan SET level = 3.3 WHERE weight = 123456")  # as it was
    assert scan(fresh_path).tables
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM scan WHERE ctid IN (SELECT ctid FROM scan LIMIT 1)")
    with pytest.raises(FirewallError, match="no longer holds"):
        scan(fresh_path)
