"""`spec draft`: complete, valid, and no rare value or exact extreme made public."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from synthrelease.errors import SpecError
from synthrelease.private.draft import _round_outward, draft_spec
from synthrelease.spec import load_spec


def _table(n=2000, seed=1):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "age": rng.integers(17, 91, size=n),
        "income": rng.lognormal(10, 1, size=n).round(2),
        "dept": rng.choice(["sales", "ops", "it"], size=n),
        "active": rng.random(n) < 0.5,
        "joined": pd.to_datetime("2015-03-01") + pd.to_timedelta(rng.integers(0, 3000, n), unit="D"),
    })
    df.loc[0, "dept"] = "Atlantis"          # seen once: must not become public
    for i in range(1, 10):                  # seen 9 times (< k=10)
        df.loc[i, "dept"] = "rare9"
    return df


def test_draft_protects_rare_values_and_extremes(tmp_path):
    df = _table()
    data = tmp_path / "t.csv"
    df.to_csv(data, index=False)
    out = tmp_path / "specs" / "t.yaml"
    draft_spec(data, name="t", output=out, target="active")
    text = out.read_text()
    assert text.startswith("# Release spec DRAFTED")
    assert "become PUBLIC" in text.replace("becomes PUBLIC", "become PUBLIC")
    assert "Atlantis" not in text and "rare9" not in text
    raw = yaml.safe_load(text)
    cols = raw["schema"]["columns"]
    assert cols["dept"]["type"] == "categorical"
    assert sorted(cols["dept"]["categories"]) == ["it", "ops", "sales"]
    assert cols["dept"]["other"] == "other"
    assert cols["active"]["type"] == "boolean"
    assert cols["joined"]["type"] == "datetime"
    for name in ("age", "income"):
        c = cols[name]
        assert c["type"] == "numerical"
        assert c["lower"] < df[name].min() and c["upper"] > df[name].max()
    assert cols["age"]["integer"] is True
    assert raw["synthetic_rows"] == 2000 and raw["target"] == "active"
    spec = load_spec(out)  # valid, with the source path resolved from the spec's folder
    assert spec.source.path == data.resolve()


def test_row_count_is_rounded(tmp_path):
    df = _table(n=2345)
    data = tmp_path / "t.parquet"
    df.to_parquet(data)
    raw = draft_spec(data, name="t", output=tmp_path / "t.yaml")
    assert raw["synthetic_rows"] == 2300


@pytest.mark.parametrize("lo, hi", [(17, 90), (0, 99999), (1, 16), (-3.2, 7.9), (5, 5), (1e-3, 2e-3)])
def test_bounds_round_outward_and_never_hit_the_exact_extremes(lo, hi):
    integer = float(lo).is_integer() and float(hi).is_integer()
    lower, upper = _round_outward(lo, hi, integer=integer)
    assert lower < lo and upper > hi


def test_unknown_target_and_format(tmp_path):
    data = tmp_path / "t.csv"
    _table().to_csv(data, index=False)
    with pytest.raises(SpecError, match="--target 'nope'"):
        draft_spec(data, name="t", output=tmp_path / "o.yaml", target="nope")
    odd = tmp_path / "t.xlsx"
    odd.write_text("x")
    with pytest.raises(Exception, match="unknown table format"):
        draft_spec(odd, name="t", output=tmp_path / "o.yaml")
