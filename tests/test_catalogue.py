"""The requirement catalogue: one ID, one level, one test; the published table is current."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from cli_runs import CLI, in_process

from conformance.contract import catalogue

ROOT = Path(__file__).resolve().parent.parent
SUITE = ROOT / "conformance" / "suite"


def collected_requirements(profile: str, as_command: bool) -> list[str]:
    """Requirement IDs of the suite's tests, from a real collection (no request is sent): by the command a
    user types, or by the CLI's own entry point in this interpreter (cli_runs.in_process)."""
    argv = ["run", "--dry-run", "--profile", profile, "--base-url", "http://127.0.0.1:9", "--api-key", "k"]
    if as_command:
        done = subprocess.run([*CLI, *argv], capture_output=True, text=True, timeout=120, cwd=ROOT)
        code, stdout, stderr = done.returncode, done.stdout, done.stderr
    else:
        code, stdout, stderr = in_process(argv, cwd=ROOT)
    assert code == 0, stdout + stderr
    return re.findall(r"^  ([A-Z]+-\d{3}) ", stdout, flags=re.M)


def test_ids_are_unique_and_well_formed() -> None:
    ids = [r.id for r in catalogue.REQUIREMENTS]
    assert len(ids) == len(set(ids))
    for r in catalogue.REQUIREMENTS:
        assert re.fullmatch(r"[A-Z]+-\d{3}", r.id), r.id
        assert r.level in catalogue.LEVELS and r.statement and r.source
        assert set(r.profiles) <= set(catalogue.ALL_PROFILES)


@pytest.mark.parametrize("profile", catalogue.ALL_PROFILES)
def test_every_requirement_has_exactly_one_test(profile: str) -> None:
    # the first profile's collection is the command a user types, the others run in this interpreter
    ids = collected_requirements(profile, as_command=profile == catalogue.ALL_PROFILES[0])
    assert sorted(ids) == sorted(r.id for r in catalogue.for_profile(profile))


def test_published_table_is_current() -> None:
    published = (ROOT / "docs" / "requirements.md").read_text(encoding="utf-8")
    assert catalogue.markdown_table() in published, "regenerate: sgp-conformance list --format markdown"
