"""The public manifest and README of a release: DP guarantee, provenance, verdicts.

Only public things go in: the spec's public schema, the DP accounting, the gate's
pass/fail per check with its threshold (no figure computed on real rows), hashes.

Provenance of public metadata (``manifest["provenance"]``): per column, where its domain
came from (``declared`` by the custodian, ``drafted``: read from the rows by `spec
draft` WITHOUT DP, or ``dp``: a DP estimate charged to the budget) and its out-of-domain
rule (``clip`` / ``drop`` / ``other``, applied row by row); likewise for
``synthetic_rows`` and ``privacy.delta`` (``declared``, ``default``: a public default,
``drafted``, ``dp``). Anything ``drafted`` is repeated under ``not_dp`` and said plainly
in the README and the catalog. A release made with seeded (test) noise says
``noise: seeded - NOT PRIVATE`` in the manifest's first key, the README's first line and
the catalog.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from synthrelease.spec import ReleaseSpec

MANIFEST_FORMAT = 3  # 2: per-file provenance ("artifacts"), models, publication;
#                      3: noise first, provenance of public metadata, run_spec_sha256
NEIGHBOURING = "add/remove one row of the source table (Bernoulli holdout split)"
SEEDED_NOISE = "seeded - NOT PRIVATE"
NOT_DP_WARNING = (
    "read from the sensitive rows by `spec draft` WITHOUT differential privacy: not "
    "covered by the DP guarantee"
)


def code_version() -> str:
    try:
        return f"synthrelease {version('synthrelease')}"
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "synthrelease (unknown version)"


def noise_label(noise: str) -> str:
    """The manifest's ``noise`` value: ``secure``, or ``seeded - NOT PRIVATE``."""
    return SEEDED_NOISE if noise == "seeded" else str(noise)


def metadata_provenance(spec: ReleaseSpec) -> dict[str, Any]:
    """Where each public, data-shaping value of the spec came from (see module doc)."""
    prov = spec.provenance
    estimate = prov.domain_estimate
    not_dp = spec.not_dp
    return {
        "columns": {
            name: {"domain": col.provenance, "out_of_domain": col.policy}
            for name, col in spec.schema_.columns.items()
        },
        "synthetic_rows": prov.synthetic_rows,
        "delta": prov.delta,
        # the public row count that the draft's bins and thresholds (and the plan) used
        "expected_rows": None if spec.expected_rows is None else prov.expected_rows,
        "domain_estimate": None
        if estimate is None
        else {
            "epsilon": estimate.epsilon,
            "delta": estimate.delta,
            "ledger_run_id": estimate.run_id,
            "note": "spent by `spec draft --dp` on the domains marked 'dp', before this "
            "release; the published data depends on the rows through both spends, so "
            "its end-to-end guarantee is the sum (see privacy.end_to_end)",
        },
        "not_dp": {**not_dp, "warning": NOT_DP_WARNING} if any(not_dp.values()) else None,
    }


def build_manifest(
    spec: ReleaseSpec,
    *,
    privacy: Mapping[str, Any],
    gate: Mapping[str, Any],
    tables: list[str],
    created: dt.datetime,
    models: list[dict[str, Any]] | None = None,
    generator_files: list[str] | None = None,
    run_spec_sha256: str | None = None,
    neighbouring: str = NEIGHBOURING,
    noise: str | None = None,
    audit: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything but ``version``/``files``/``artifacts``, which the store adds.

    ``models``: ``{name, kind, target, algorithm, file, card}`` per published model;
    ``generator_files``: the fitted DP generator's files when the spec opted in;
    ``run_spec_sha256``: the digest of the run's frozen spec (recorded as given);
    ``neighbouring``: the neighbouring relation the guarantee is stated under;
    ``noise``: the noise mode the run used, ``secure`` or ``seeded`` (default: the spec's
    ``privacy.noise``). ``noise`` is the first key (``secure`` or ``seeded - NOT PRIVATE``).
    ``audit``: the one-run privacy audit's public figures (``privacy.audit``).
    """
    provenance = metadata_provenance(spec)
    mode = spec.privacy.noise if noise is None else noise
    if mode not in ("secure", "seeded"):
        raise ValueError("noise must be 'secure' or 'seeded'")
    eps, delta = float(privacy["epsilon"]), float(privacy["delta"])
    estimate = spec.provenance.domain_estimate
    end_to_end: dict[str, float | str] = {"epsilon": eps, "delta": delta}
    if estimate is not None:
        end_to_end = {
            "epsilon": eps + estimate.epsilon,
            "delta": delta + estimate.delta,
            "includes": "this release and the DP domain estimate of `spec draft --dp`",
        }
    return {
        "noise": noise_label(mode),
        "format": MANIFEST_FORMAT,
        "dataset": spec.name,
        "created": created.astimezone(dt.UTC).isoformat(timespec="seconds"),
        "privacy": {
            "epsilon": eps,
            "delta": delta,
            "accountant": privacy["accountant"],
            "noise": mode,
            "scope": "end to end: every statistic of the sensitive rows used by the "
            "generator is covered; bounds and category sets are public metadata "
            "declared in the spec, or DP estimates charged to the budget (a line of "
            "the details, or the draft's own ledger entry) where the spec says "
            "provenance 'dp'"
            + (
                "; EXCEPT the domains marked 'drafted' (read from the rows without DP)"
                if provenance["not_dp"]
                else ""
            ),
            "neighbouring": neighbouring,
            "end_to_end": end_to_end,
            "details": dict(privacy),
            "audit": dict(audit) if audit is not None else {"ran": False},
        },
        "provenance": provenance,
        "generator": {"name": spec.generator.name, "params": dict(spec.generator.params)},
        "schema": spec.schema_.model_dump(mode="json", exclude={"sdv_metadata"}),
        "target": spec.target,
        "synthetic_rows": spec.synthetic_rows,
        "tables": tables,
        "spec_sha256": spec.digest(),
        "run_spec_sha256": run_spec_sha256,
        "code_version": code_version(),
        "gate": dict(gate),
        "models": list(models or []),
        "publication": {
            "generator": bool(generator_files),
            "generator_files": list(generator_files or []),
            "provenance": "every file is synthetic, trained on synthetic data only, the DP "
            "generator (opt-in) or public metadata; see 'artifacts'",
        },
    }


def provenance_lines(manifest: Mapping[str, Any]) -> list[str]:
    """Plain-language lines on the provenance of the public metadata (README/catalog)."""
    prov = manifest.get("provenance") or {}
    cols = prov.get("columns") or {}
    lines: list[str] = []
    by_kind: dict[str, list[str]] = {}
    for name, c in cols.items():
        by_kind.setdefault(c.get("domain", "declared"), []).append(name)
    if by_kind.get("drafted"):
        lines.append(
            "- **NOT differentially private: the domains (bounds / category sets) of "
            + ", ".join(f"`{c}`" for c in by_kind["drafted"])
            + " were read from the original rows by `spec draft` without DP.** They are "
            "not covered by the guarantee above."
        )
    drafted_values = [
        k for k in ("synthetic_rows", "delta", "expected_rows") if prov.get(k) == "drafted"
    ]
    if drafted_values:
        lines.append(
            "- **NOT differentially private: "
            + ", ".join(f"`{k}`" for k in drafted_values)
            + " derived from the original rows (their count) without DP"
            + (
                " (the count rounded down to two significant digits; the drafted bins and "
                "gate thresholds were chosen from it)"
                if "expected_rows" in drafted_values
                else ""
            )
            + ".**"
        )
    if by_kind.get("dp"):
        est = prov.get("domain_estimate")
        cost = (
            (
                f" under ({est['epsilon']:g}, {est['delta']:g})-DP (charged to the table's "
                "budget before this release)"
            )
            if est
            else " under DP, charged to the budget"
        )
        lines.append(
            "- The domains of "
            + ", ".join(f"`{c}`" for c in by_kind["dp"])
            + f" were estimated from the rows{cost}."
        )
    if by_kind.get("declared"):
        lines.append(
            "- The domains of "
            + ", ".join(f"`{c}`" for c in by_kind["declared"])
            + " are public metadata declared by the data custodian."
        )
    rules = sorted({c.get("out_of_domain") for c in cols.values() if c.get("out_of_domain")})
    if rules:
        lines.append(
            "- Values outside a domain were handled row by row ("
            + ", ".join(rules)
            + "; per column in `manifest.json`), never by "
            "stopping the run."
        )
    return lines


def audit_lines(audit: Mapping[str, Any]) -> list[str]:
    """The README's line on the one-run privacy audit (``privacy.audit``)."""
    if not audit.get("ran"):
        return ["- Privacy audit: not run."]
    bound, stated = audit.get("epsilon_lower_bound"), audit.get("epsilon")
    below = isinstance(bound, (int, float)) and isinstance(stated, (int, float)) and bound <= stated
    return [
        f"- Privacy audit (one run, {audit.get('canaries')} canaries): empirical epsilon "
        f"lower bound {bound} at {audit.get('confidence')} confidence, "
        f"{'at or below' if below else 'ABOVE'} the stated {stated} (the most these "
        f"canaries could show: {audit.get('ceiling')}). A lower bound only: it catches "
        "implementation bugs, it never proves the guarantee."
    ]


def release_readme(manifest: Mapping[str, Any]) -> str:
    """A short public README for a release (what it is, its guarantee, how to load it)."""
    p = manifest["privacy"]
    cols = manifest["schema"]["columns"]
    checks = manifest["gate"].get("checks", [])
    seeded = manifest.get("noise") == SEEDED_NOISE
    lines = [
        *(
            [
                f"**noise: {SEEDED_NOISE}**: this release was made with reproducible test "
                "noise; it offers NO privacy. Do not use it for real data.",
                "",
            ]
            if seeded
            else []
        ),
        f"# {manifest['dataset']} — synthetic release {manifest['version']}",
        "",
        "This folder holds **synthetic data** generated by a differentially private (DP) "
        "model: its rows are drawn from the model, not copied from the original table. "
        + (
            "The fitted DP generator is published too (`generator/`): it saw the original "
            "rows only through the DP mechanism, so releasing it is post-processing."
            if manifest.get("publication", {}).get("generator")
            else "The generator itself was trained with DP and is not published."
        ),
        "",
        "## Privacy guarantee",
        f"- ({p['epsilon']:g}, {p['delta']:g})-differential privacy, end to end, under "
        f"{p.get('neighbouring', 'add/remove one row')} neighbouring tables; accountant: "
        f"{p['accountant']}.",
        *(
            [
                f"- With the DP domain estimate of `spec draft --dp`: "
                f"({p['end_to_end']['epsilon']:g}, {p['end_to_end']['delta']:g})-DP in total."
            ]
            if (p.get("end_to_end") or {}).get("includes")
            else []
        ),
        f"- Generator: `{manifest['generator']['name']}` with parameters "
        f"`{manifest['generator']['params']}`.",
        *audit_lines(p.get("audit") or {}),
        *(
            provenance_lines(manifest)
            if manifest.get("provenance")
            else ["- Bounds and category sets are public metadata declared by the data custodian."]
        ),
        "",
        "## Contents",
        f"- {manifest['synthetic_rows']} synthetic rows, {len(cols)} columns: "
        + ", ".join(f"`{c}` ({v['type']})" for c, v in cols.items()),
        *[
            f"- model `{m['name']}` ({m['kind']}, {m['algorithm']}, target `{m['target']}`): "
            f"`{m['file']}`, card `{m['card']}`; trained on the synthetic table only"
            for m in manifest.get("models", [])
        ],
        "- `manifest.json`: DP accounting, schema, gate verdicts, sha256 and provenance of "
        "every file.",
        "",
        "## Checks passed before release",
    ]
    lines += [f"- {c['name']}: {'pass' if c['passed'] else 'FAIL'}" for c in checks]
    lines += [
        "",
        "## Use",
        "```python",
        "import synthrelease",
        f"df = synthrelease.load({manifest['dataset']!r}, version={manifest['version']!r})",
        *[
            f"model = synthrelease.load_model({manifest['dataset']!r}, model={m['name']!r}, "
            f"version={manifest['version']!r})  # onnxruntime; model.predict(df)"
            for m in manifest.get("models", [])
        ],
        "```",
        f"or `synthrelease pull {manifest['release_id']} -o DIR` (hashes are verified).",
        "",
    ]
    return "\n".join(lines)
