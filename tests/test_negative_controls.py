"""The negative controls of issue 19: a server written independently of the reference server
(tests/independent_server.py) that enforces exactly what the contract states passes `--fail-on should` in
both profiles, and one that takes the other side of every open point passes `--fail-on must`, whatever the
seed. A few seeds here; `scripts/negative_controls.py` measures 20 seeds at standard depth and 5 at deep.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_runs import run_either
from independent_server import IndependentServer, Stance

from conformance.contract.profiles import PROFILES
from conformance.server import start_server

KEY = "sk-independent-control-5f1e"
CASES = [(profile, stance, seed) for profile in ("sgp", "openai")
         for stance, seeds in ((Stance.STATED, (11, 12)), (Stance.ACCEPTING, (13,))) for seed in seeds]


@pytest.mark.parametrize(("profile", "stance", "seed"), CASES, ids=lambda v: getattr(v, "value", str(v)))
def test_an_independent_server_is_conformant_at_its_level(profile: str, stance: Stance, seed: int,
                                                          tmp_path: Path) -> None:
    fail_on = "should" if stance is Stance.STATED else "must"
    with start_server(IndependentServer(profile, stance, keys=(KEY,)), profile=PROFILES[profile]) as server:
        args = ["run", "--base-url", server.base_url, "--profile", profile, "--seed", str(seed), "--max-examples",
                "10", "--fail-on", fail_on]
        # in this interpreter (the CLI's own entry point); the first case also as the command a user types
        out = run_either(args, tmp_path / "reports", {"SGP_API_KEY": KEY}, as_command=(profile, seed) == ("sgp", 11))
    doc = json.loads((tmp_path / "reports" / "conformance.json").read_text(encoding="utf-8"))
    failed = [(r["id"], r["message"]) for r in doc["results"] if r["status"] in ("fail", "error")]
    gating = [f for f in failed if stance is Stance.STATED or
              next(r for r in doc["results"] if r["id"] == f[0])["level"] == "MUST"]
    assert out.code == 0 and not gating, (gating, out.output[-2000:])
    if stance is Stance.ACCEPTING:
        # it reads the open points the other way, and the report says so without failing it
        observed = {p["choice"] for p in doc["open_points"] if p["behaviour"] == "broken"}
        assert {"clock-created", "refuses-out-of-bounds", "top-logprobs-exact"} <= observed
