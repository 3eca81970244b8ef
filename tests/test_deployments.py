"""prefect.yaml declares one scheduled, concurrency-limited deployment per spec.

Deployments are named after the spec file (release/adult, release/adult-dpsgd, ...);
several specs may release the same dataset and so share its budget."""

from __future__ import annotations

from pathlib import Path

import yaml

from synthrelease.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]


def _deployments():
    return yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]


def test_every_spec_in_configs_has_a_deployment():
    by_spec = {d["parameters"]["spec_path"]: d for d in _deployments()}
    specs = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "configs").glob("*.yaml"))
    assert specs and sorted(by_spec) == specs
    for path, dep in by_spec.items():
        load_spec(ROOT / path)  # valid
        assert dep["name"] == Path(path).stem  # release/<spec file name>
        assert dep["entrypoint"] == "flows/release.py:release"
        assert dep["concurrency_limit"] == 1
        assert dep["schedules"] and all(s.get("cron") for s in dep["schedules"])
        assert dep["work_pool"]["name"] == "local"


def test_prefect_yaml_holds_no_secrets_and_no_pull_step():
    raw = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    assert raw.get("pull") is None
    text = (ROOT / "prefect.yaml").read_text().lower()
    for word in ("password", "secret", "token", "aws_access"):
        assert word not in text
