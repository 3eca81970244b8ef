"""``synthrelease spec draft``: propose a complete spec from a table.

Trusted reader: it reads the rows, and what it writes becomes *public* once released.
Two modes.

**Plain draft (default): NOT differentially private.** Bounds and category sets are read
from the rows, so every drafted column says ``provenance: drafted``, and a release made
from such a spec says, in its manifest, README and catalog entry, that those domains
were read from the rows without DP. The draft still avoids the worst leaks:

- a category seen in fewer than ``k`` rows (default 10) is left out of the category set
  and goes to the ``other`` bucket, which every drafted categorical column declares
  (so the bucket's presence says nothing either);
- numeric and datetime bounds are rounded *outward* to a coarse step and pushed one step
  further where the rounding would land on the exact minimum or maximum;
- every column is declared nullable (whether a column has a null is itself a fact).

**DP draft (``--dp EPSILON``).** Bounds and category sets are estimated under
(EPSILON, ``--dp-delta``)-DP with the mechanisms of ``generators/dp_domain.py``, and the
spend is charged to the table's budget ledger as an entry of its own (``draft-<uuid>``)
*before* any row is read; it is marked ``spent`` once the rows were read, whatever
happens next. Drafted columns say ``provenance: dp`` and the spec's
``provenance.domain_estimate`` records the spend (the manifest adds it to the release's
own guarantee). How:

- the budget is split before any row is read, from the header alone: half of
  ``--dp-delta`` converts the zCDP total to (epsilon, delta) (Canonne-Kamath-Steinke),
  the other half pays the partition selection of categorical columns; the zCDP total and
  that half of delta are split equally over *all* columns of the header, whatever their
  type turns out to be (so the plan does not depend on the rows);
- numeric bounds: :func:`dp_domain.dp_bounds`, a Gaussian histogram on dp_domain's
  fixed, public grid (sign, then quarter-octaves from 2^-8 to 2^50, plus zero and
  overflow cells). That grid *is* the public coarse range the histogram needs: no range
  has to be declared, and bounds come out as grid edges (a relative resolution of about
  19%), then rounded outward to two significant digits (post-processing);
- datetime bounds: the same histogram over days since 1970-01-01 (a public origin),
  rounded outward to 1 January;
- category sets: :func:`dp_domain.dp_categories` (Gaussian partition selection; rare
  values are suppressed and go to the ``other`` bucket, which every categorical column
  declares). No ``k`` threshold applies: the DP threshold replaces it;
- noise: :meth:`NoiseSource.secure` (OS CSPRNG); seeded only for tests, when the
  environment sets ``SYNTHRELEASE_TEST_NOISE=1`` *and* ``--seed`` is given.

**Column types.** The kind comes from the file header and the column dtypes (Parquet: its
schema; CSV: the types pandas infers, plus a check for true/false text and ISO dates:
this content check is the documented exception, in both modes). Then, plain draft,
from the column's exact distinct values (NOT DP, like its bounds; a single rare value
can change a plain-drafted type):

- exactly the two numbers 0 and 1 (ints, floats, or text the release reads as 0/1), or
  exactly two text values, one true and one false spelling (yes/no, y/n, t/f,
  :data:`synthrelease.values.TRUE_TEXT` / ``FALSE_TEXT``) -> ``boolean``;
- whole numbers, at most 20 distinct in a span of at most 40 (``draft_columns``), or a
  single value -> ``categorical`` with their labels as the release reads them (``"3"``,
  never ``"3.0"``; sorted numerically), then the ``k`` rule. Where the file's text is
  another label (``3.0`` or ``03`` in a CSV), the column stays numerical. To check this
  the draft reads numeric columns a second time as the release reads a category (the
  CSV's text; Parquet: ``str`` of the value);
- everything else as before.

DP draft: the same rules, decided from DP outputs only (the DP category set of a text
column; the DP bounds and a DP integer histogram of a numeric column: see
``draft_dp``); the dtype decides only the kind.

**The target** (``--target``) never gets an ``other`` bucket: a two-valued target stays a
two-class problem. Its labels seen in fewer than ``k`` rows (DP: not selected) are left
out, and rows holding them are dropped at release (the default out-of-domain rule of a
categorical column without a bucket). A target left with no label is refused (the
message names the column, never a value).

**Row count, delta, generator, bins, gate**: public choices, made without reading a
row (but ``expected_rows``, below): see ``draft_choices``.

Modules: this one reads the rows and writes the spec; ``draft_columns`` (types and plain
domains) and ``draft_dp`` (DP domains and the budget plan) work on the columns it reads;
``draft_choices`` holds the public part (arguments, skeleton, choices, comments).
Values are read by :mod:`synthrelease.values`, as the release reads them.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pandas as pd

from synthrelease.errors import SourceError
from synthrelease.generators.dp_domain import dp_row_count
from synthrelease.ledger import ledger_at
from synthrelease.planning import gate_for_draft, round_rows, suggest_bins
from synthrelease.private import draft_choices
from synthrelease.private.draft_columns import draft_column
from synthrelease.private.draft_dp import dp_column, draft_noise, plan_dp_draft
from synthrelease.private.sources import describe, load_raw, read_header, source_for_file
from synthrelease.private.table import SensitiveTable
from synthrelease.spec import Budget, CsvSource, ParquetSource, parse_spec


def draft_spec(
    data: Path,
    *,
    name: str,
    output: Path,
    target: str | None = None,
    k: int = draft_choices.DEFAULT_K,
    rows: int | None = None,
    delta: float | None = None,
    expected_rows: int | None = None,
    dp: float | None = None,
    dp_delta: float = draft_choices.DEFAULT_DP_DELTA,
    workspace: Path = draft_choices.DEFAULT_WORKSPACE,
    budget_epsilon: float = draft_choices.DEFAULT_BUDGET_EPSILON,
    budget_delta: float = draft_choices.DEFAULT_BUDGET_DELTA,
    seed: int | None = None,
) -> dict[str, Any]:
    """Read ``data`` and write a reviewed-to-be spec to ``output``; returns the mapping.

    ``dp``: draft the domains (and, unless ``expected_rows`` is declared, the row count)
    under (dp, dp_delta)-DP, charged to the ledger of ``workspace`` under ``name`` with
    the lifetime budget (budget_epsilon, budget_delta) before any row is read. Without it
    the domains, the types and ``expected_rows`` are read from the rows (NOT DP).
    """
    import yaml

    n_rows = draft_choices.DEFAULT_ROWS if rows is None else int(rows)
    release_delta = draft_choices.DEFAULT_DELTA if delta is None else float(delta)
    draft_choices.check_args(
        k=k,
        rows=n_rows,
        delta=release_delta,
        budget_epsilon=budget_epsilon,
        budget_delta=budget_delta,
        dp=dp,
        dp_delta=dp_delta,
        expected_rows=expected_rows,
    )
    source = source_for_file(Path(data))
    header = [str(c) for c in read_header(source)]  # public: no row is read here
    draft_choices.check_header(header, target=target, data=data)
    out_dir = output.resolve().parent
    ws_path = Path(workspace).resolve()
    raw = draft_choices.skeleton(
        name=name,
        source=source,
        data=Path(data).resolve(),
        header=header,
        target=target,
        rows=rows,
        delta=delta,
        expected_rows=expected_rows,
        dp=dp,
        budget=(budget_epsilon, budget_delta),
        workspace=ws_path,
        base=out_dir,
    )
    # Everything but the domains must validate before a row is read (or a budget charged).
    parse_spec(
        {**raw, "schema": {"columns": {c: {"type": "boolean"} for c in header}}},
        base=out_dir,
        origin="drafted spec",
    )
    if dp is None:
        frame = load_raw(source, label=name).reveal()
        texts = _release_texts(source, frame)
        raw["schema"]["columns"] = {
            str(c): draft_column(frame[c], k=k, target=c == target, text=texts.get(str(c)))
            for c in frame.columns
        }
        if expected_rows is None:
            raw["expected_rows"] = round_rows(int(frame.shape[0]))
            raw["provenance"]["expected_rows"] = "drafted"
        del frame, texts
        text = draft_choices.plain_header(Path(data).name, k=k)
    else:
        run_id = f"draft-{uuid.uuid4()}"
        raw["schema"]["columns"], count = _dp_columns(
            source,
            name=name,
            header=header,
            target=target,
            epsilon=dp,
            delta=dp_delta,
            count=expected_rows is None,
            workspace=ws_path,
            budget=(budget_epsilon, budget_delta),
            run_id=run_id,
            seed=seed,
        )
        if count is not None:
            raw["expected_rows"] = count
            raw["provenance"]["expected_rows"] = "dp"
        raw["provenance"]["domain_estimate"] = {
            "epsilon": float(dp),
            "delta": float(dp_delta),
            "run_id": run_id,
        }
        text = draft_choices.dp_header(
            Path(data).name, epsilon=dp, delta=dp_delta, name=name, run_id=run_id
        )
    text += draft_choices.HEADER_TAIL
    text += _choose(raw, header=header, target=target, base=out_dir)
    if target is not None and raw["schema"]["columns"][target]["type"] == "categorical":
        text += draft_choices.target_note(target, plain=dp is None, k=k)
    parse_spec(raw, base=out_dir, origin="drafted spec")  # the draft must validate
    text += yaml.safe_dump(raw, sort_keys=False, allow_unicode=True, width=100)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    return raw


def _choose(raw: dict[str, Any], *, header: list[str], target: str | None, base: Path) -> str:
    """Set the generator's bins and the gate in ``raw`` (public facts only: the header,
    the target, expected_rows, the release's epsilon and delta, the drafted columns);
    returns the header comment that says how they were chosen (``draft_choices``).
    ``gate_for_draft`` is called from here: tests stub it as ``draft.gate_for_draft``."""
    rows = int(raw["expected_rows"])
    eps, delta = raw["privacy"]["epsilon"], raw["privacy"]["delta"]
    bins = suggest_bins(rows=rows, epsilon=eps, delta=delta, columns=len(header))
    raw["generator"]["params"] = {"bins": bins}
    planned = gate_for_draft(parse_spec(raw, base=base, origin="drafted spec"), rows=rows)
    raw["gate"] = {**draft_choices.DEFAULT_GATE, **planned}
    return draft_choices.explain_choices(raw, columns=len(header), target=target, planned=planned)


def _release_texts(source: CsvSource | ParquetSource, frame: pd.DataFrame) -> dict[str, pd.Series]:
    """The numeric columns of ``frame`` as the release reads a categorical column
    (``private/sources.load_table``): a CSV's own text, a Parquet value's ``str``. The
    draft compares them with the labels it would write (``draft_columns``)."""
    names = [
        str(c)
        for c in frame.columns
        if pd.api.types.is_numeric_dtype(frame[c].dtype) and frame[c].dtype != bool
    ]
    if not names:
        return {}
    if isinstance(source, ParquetSource):
        return {
            n: frame[n]
            .astype(object)
            .where(frame[n].notna(), None)
            .map(lambda v: v if v is None else str(v))
            for n in names
        }
    try:
        text = pd.read_csv(
            source.path,
            sep=source.separator,
            encoding=source.encoding,
            usecols=names,
            dtype=str,
            keep_default_na=False,
            na_values=[""],
            low_memory=False,
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError, OSError) as exc:
        raise SourceError(f"{describe(source)}: cannot parse ({type(exc).__name__})") from None
    if len(text) != len(frame):
        raise SourceError(f"{describe(source)}: the file changed while it was read")
    text.index = frame.index
    return {n: text[n] for n in names}


def _dp_columns(
    source: CsvSource | ParquetSource,
    *,
    name: str,
    header: list[str],
    target: str | None,
    epsilon: float,
    delta: float,
    count: bool,
    workspace: Path,
    budget: tuple[float, float],
    run_id: str,
    seed: int | None,
) -> tuple[dict[str, dict[str, Any]], int | None]:
    """Charge the ledger, then read the rows and estimate every column's domain and, with
    ``count``, the row count (one ledger entry: (epsilon, delta) in all)."""
    plan = plan_dp_draft(epsilon=epsilon, delta=delta, columns=len(header), count=count)
    noise = draft_noise(seed)  # refuses a seed without the test switch, before any charge
    lifetime = Budget(epsilon=budget[0], delta=budget[1])
    ledger = ledger_at(workspace)  # the custodian's ledger when $SYNTHRELEASE_LEDGER_URL is set
    try:
        rid = ledger.reserve(
            name, epsilon=float(epsilon), delta=float(delta), budget=lifetime, run_id=run_id
        )
        try:  # from here on the rows are read: the spend is never refunded
            frame = load_raw(source, label=name).reveal()
            texts = _release_texts(source, frame)
            rows = None
            if count:
                whole = SensitiveTable(frame, label=name)
                rows = int(dp_row_count(whole, rho=plan.rho_count, noise=noise))
                del whole
            columns = {
                str(c): dp_column(
                    frame,
                    c,
                    rho=plan.rho_column,
                    delta=plan.delta_column,
                    noise=noise,
                    label=name,
                    target=c == target,
                    text=texts.get(str(c)),
                )
                for c in frame.columns
            }
            del frame, texts
        finally:
            ledger.mark_spent(rid, reason="spec draft --dp")
    finally:
        ledger.close()
    return columns, rows
