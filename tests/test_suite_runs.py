"""The whole suite against the reference server: it passes, in both profiles, at every depth and pace."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_runs import run_cli

from conformance import catalogue

PROFILES = ["sgp", "openai"]


@pytest.mark.parametrize("profile", PROFILES)
def test_reference_server_conforms_fully(profile: str, tmp_path: Path) -> None:
    out = run_cli(["run", "--profile", profile, "--clients"], tmp_path / "reports")
    assert out.code == 0, out.output[-3000:]
    doc = out.doc
    judged = {r["id"]: r["status"] for r in doc["results"]}
    expected = {r.id for r in catalogue.for_profile(profile)}
    assert set(judged) == expected
    assert {rid: s for rid, s in judged.items() if s != "pass"} == {}
    assert doc["verdict"] == "conformant"
    assert "CONFORMANT" in out.stdout and "Traceback" not in out.output
    for name in ("conformance.html", "junit.xml", "conformance.json"):
        assert (tmp_path / "reports" / name).is_file()


@pytest.mark.parametrize("profile", PROFILES)
def test_smoke_judges_every_must_within_30_requests(profile: str, tmp_path: Path) -> None:
    out = run_cli(["run", "--profile", profile, "--depth", "smoke", "--clients"], tmp_path / "reports")
    assert out.code == 0, out.output[-3000:]
    doc = out.doc
    assert doc["requests"]["sent"] <= 30
    statuses = {r["id"]: (r["level"], r["status"]) for r in doc["results"]}
    musts = {r.id for r in catalogue.for_profile(profile) if r.level == catalogue.MUST}
    assert {rid for rid, (level, status) in statuses.items() if status == "pass"} == musts
    assert all(status == "skip" for level, status in statuses.values() if level != catalogue.MUST)


def test_parallel_workers_and_concurrency_agree(tmp_path: Path) -> None:
    out = run_cli(["run", "-n", "2", "--concurrency", "4", "--max-examples", "5", "--clients"], tmp_path / "reports")
    assert out.code == 0, out.output[-3000:]
    doc = out.doc
    # the workers' requests are counted on the controller
    assert doc["requests"]["sent"] >= 40
    assert all(r["status"] == "pass" for r in doc["results"])


def test_dry_run_plans_and_sends_nothing(tmp_path: Path) -> None:
    # a closed port: a dry run that sent anything would find it unreachable
    out = run_cli(["run", "--dry-run", "--depth", "smoke", "--base-url", "http://127.0.0.1:9",
                   "--api-key", "k"], tmp_path / "reports")
    assert out.code == 0, out.output
    assert "BASIC-001" in out.stdout and "AUTH-001" in out.stdout
    total = next(line for line in out.stdout.splitlines() if line.startswith("total:"))
    assert int(total.split()[1]) <= 30
    assert not (tmp_path / "reports" / "conformance.json").exists()


def test_pytest_arguments_pass_through(tmp_path: Path) -> None:
    out = run_cli(["run", "-k", "missing_key or wrong_key"], tmp_path / "reports")
    assert out.code == 0, out.output[-2000:]
    assert {r["id"] for r in out.doc["results"]} == {"AUTH-001", "AUTH-003"}
