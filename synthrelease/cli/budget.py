"""``synthrelease budget show|set``: the ledger, its entries and the lifetime budgets."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from synthrelease.cli.output import _out
from synthrelease.errors import (
    SpecError,
)
from synthrelease.ledger import BudgetLedger, ledger_at, open_ledger
from synthrelease.spec import load_spec


def _ledger(args: argparse.Namespace) -> BudgetLedger:
    if args.spec:
        return open_ledger(load_spec(args.spec))
    return ledger_at(Path(args.workspace))


def cmd_budget_show(args: argparse.Namespace) -> int:
    with _ledger(args) as ledger:
        rows = ledger.summary()
        if args.entries:
            entries, changes = ledger.entries(), ledger.budget_changes()
            if not args.private:
                entries = [dataclasses.replace(e, private_reason=None) for e in entries]
            if args.json:
                _out(
                    json.dumps(
                        {
                            "entries": [e.__dict__ for e in entries],
                            "budget_changes": [c.__dict__ for c in changes],
                        },
                        indent=2,
                        default=str,
                    )
                )
                return 0
            _out(f"{'table':<20}{'run':<28}{'epsilon':>9}{'delta':>10}  {'status':<10} reason")
            for e in entries:
                private = f" [{e.private_reason}]" if args.private and e.private_reason else ""
                _out(
                    f"{e.dataset:<20}{e.run_id:<28}{e.epsilon:>9.4g}{e.delta:>10.3g}  "
                    f"{e.status:<10} {e.reason or ''}{private}"
                )
            if changes:
                _out("")
                _out(f"{'table':<20}{'budget set at':<28}{'epsilon':>9}{'delta':>10}  reason")
                for c in changes:
                    _out(
                        f"{c.dataset:<20}{c.created_at:%Y-%m-%dT%H:%M:%S}{'':<9}"
                        f"{c.epsilon:>9.4g}{c.delta:>10.3g}  {c.reason} (by {c.by})"
                    )
            return 0
        if args.json:
            _out(json.dumps([r.__dict__ for r in rows], indent=2))
            return 0
        if not rows:
            _out("no spends recorded")
            return 0
        _out(
            f"{'table':<24}{'epsilon':>10}{'delta':>11}{'budget eps':>12}{'budget delta':>14}"
            f"{'runs ok':>9}{'spent':>7}{'open':>6}{'void':>6}"
        )
        for r in rows:
            _out(
                f"{r.dataset:<24}{r.epsilon:>10.4g}{r.delta:>11.3g}{r.budget_epsilon:>12.4g}"
                f"{r.budget_delta:>14.3g}{r.committed:>9}{r.spent:>7}{r.reserved:>6}{r.voided:>6}"
            )
        return 0


def cmd_budget_set(args: argparse.Namespace) -> int:
    """The custodian's explicit, recorded change of a table's lifetime budget."""
    from pydantic import ValidationError

    with _ledger(args) as ledger:
        try:
            ledger.set_budget(args.name, epsilon=args.epsilon, delta=args.delta, reason=args.reason)
        except ValidationError:
            raise SpecError("budget set: --epsilon must be > 0 and --delta in [0, 1)") from None
        spent_eps, spent_delta = ledger.spent(args.name)
    _out(
        f"lifetime budget of {args.name!r} set to epsilon {args.epsilon:g}, delta "
        f"{args.delta:g} (recorded; spent so far: epsilon {spent_eps:.4g}, delta "
        f"{spent_delta:.3g}). Specs of this table must now state this budget."
    )
    return 0
