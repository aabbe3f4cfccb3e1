"""Claims, both ways: a server without a feature is conformant once it declares the feature absent
(`--without`) and fails while it does not (features are never inferred); a server that breaks an open point
is observed, never failed, until it claims the position (`--claim`), which it is then held to at MUST.

The runs go through `mutants.run_many` (this interpreter, servers in-process, as the mutation matrix does),
each narrowed with -k to the requirements the feature or choice decides.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mutants
import pytest
from cli_runs import run_either
from mutants.features import FEATURELESS

from conformance.contract import catalogue, claims, status

SEED = ("--seed", "1", "--max-examples", "1")
# choices whose breaking variant is not a mutant of their requirement's own
EXTRA_VARIANTS = {"sgp-closes-stream": ("open_done_under_sgp", "STRM-005", "sgp"),
                  "top-logprobs-exact": ("logp_top_short", "LOGP-004", "sgp")}
# run-wide requirements judge what the other tests drew: their runs are not narrowed with -k
RUN_WIDE = {"ERR-006", "ERR-007"}
# judged only by the official SDKs (`--clients`), and by generated cases (PROP-003, tests/test_stated_rules.py)
NOT_HERE = {"sdk-strict-types", "refuses-null"}


def _run_many(plan: list[dict[str, Any]], tmp_path: Path) -> list[dict[str, Any]]:
    runs = [mutants.Invocation.from_dict(i) for i in plan]
    return mutants.run_many(runs, tmp_path / "reports")


def feature_requirements(feature: str, profile: str = "sgp") -> list[str]:
    """The requirements a server declaring `feature` absent is not held to under `profile` (with the features
    `feature` implies)."""
    return [r.id for r in catalogue.for_profile(profile) if r.feature in claims.absent({feature})]


def choice_cases() -> dict[str, tuple[str, str, str]]:
    """choice: (variant that breaks it, its requirement, a profile where the point is open)."""
    out = dict(EXTRA_VARIANTS)
    for name, mutant in mutants.MUTANTS.items():
        req = catalogue.get(mutant.requirement) if mutant.requirement else None
        if req is None or req.choice is None or req.choice in out:
            continue
        open_in = [p for p in mutant.profiles if status.status(req.anchor, p) == status.OPEN]
        if open_in:
            out[req.choice] = (name, req.id, open_in[0])
    return out


def _claims_reported(report_dir: Path, feature: str) -> list[str]:
    """Where the reports of a run declared --without `feature` fail to say so (conformance.json, the HTML
    header, JUnit's properties)."""
    doc = json.loads((report_dir / "conformance.json").read_text(encoding="utf-8"))
    problems = []
    if doc["run"]["claims"] != {"without": [feature], "choices": []}:
        problems.append(f"{report_dir.name}: conformance.json claims {doc['run']['claims']}")
    if f"without: {feature};" not in (report_dir / "conformance.html").read_text(encoding="utf-8"):
        problems.append(f"{report_dir.name}: the HTML header does not name the feature declared absent")
    if f'<property name="sgp_without" value="{feature}"' not in (report_dir / "junit.xml").read_text(
            encoding="utf-8"):
        problems.append(f"{report_dir.name}: junit.xml has no sgp_without property")
    return problems


def test_every_feature_and_choice_is_tested_both_ways() -> None:
    assert set(FEATURELESS) == {f"without_{f}" for f in claims.FEATURES}
    judged = {f for f in claims.FEATURES if feature_requirements(f)}
    assert judged == set(claims.FEATURES) - {"json_schema"}, "json_schema has no requirement of its own yet"
    assert set(choice_cases()) | NOT_HERE == set(claims.CHOICES)


def test_a_server_without_a_feature_is_conformant_once_it_says_so(tmp_path: Path) -> None:
    plan = []
    for feature in claims.FEATURES:
        ids = feature_requirements(feature)
        if not ids:
            continue
        select = ("-k", " or ".join(("BASIC-001", *ids)))
        # undeclared at --fail-on should: a feature's requirement may be SHOULD (SEM-010, stop)
        for label, extra in (("declared", ("--without", feature)), ("undeclared", ("--fail-on", "should"))):
            plan.append({"label": label, "variant": f"without_{feature}", "profile": "sgp",
                         "args": [*select, *extra, *SEED]})
    problems = []
    for number, result in enumerate(_run_many(plan, tmp_path)):
        feature = result["variant"].removeprefix("without_")
        ids = feature_requirements(feature)
        statuses = {rid: result["statuses"].get(rid) for rid in ids}
        where = f"{result['variant']} {result['label']}"
        if result["label"] == "declared":
            if result["code"] != 0 or set(statuses.values()) != {"not run"}:
                problems.append(f"{where}: exit {result['code']}, {statuses}\n{result['stdout'][-800:]}")
            elif f"without {feature}" not in result["stdout"]:
                problems.append(f"{where}: the verdict does not name the feature:\n{result['stdout'][-800:]}")
            else:
                problems += _claims_reported(tmp_path / "reports" / f"{number:03d}-{result['variant']}-sgp", feature)
        elif result["code"] != 1 or "fail" not in statuses.values():
            problems.append(f"{where}: a feature not declared absent must fail: exit {result['code']}, {statuses}")
    assert not problems, "\n".join(problems)


def held_by_the_matrix(name: str, rid: str, profile: str) -> bool:
    """Whether the mutation matrix (tests/test_mutation_matrix.py) already runs variant `name` under `profile`,
    every requirement judged at --fail-on should, and holds `rid` there to observed with exit 0: an unclaimed
    run of it here would prove a part of that again."""
    from test_mutation_matrix import GROUPS, expected_code, expected_status, invocations

    mutant = mutants.variant(name)
    if mutant.requirement != rid or profile not in mutant.profiles or not any(name in g for g in GROUPS.values()):
        return False
    return expected_status(mutant, profile) == "observed" and all(
        expected_code(mutant, inv.label, profile) == 0 and inv.args[:2] == ("--fail-on", "should")
        for inv in invocations(name, profile))


def test_a_claimed_choice_is_held_at_must_and_an_unclaimed_one_only_observed(tmp_path: Path) -> None:
    """Claimed, each choice's breaking variant fails its requirement at MUST. Unclaimed, it is only observed
    (exit 0): run here for the variants the mutation matrix does not already hold so (`held_by_the_matrix`:
    most of them, as the mutants of their own open requirement)."""
    plan = []
    held = set()
    for choice, (name, rid, profile) in choice_cases().items():
        mutant = mutants.variant(name)
        for label, extra in (("claimed", ("--claim", choice)), ("unclaimed", ())):
            if label == "unclaimed" and held_by_the_matrix(name, rid, profile):
                held.add(choice)
                continue
            plan.append({"label": label, "variant": name, "profile": profile,
                         "args": [*(("-k", rid) if rid not in RUN_WIDE else ()), *extra, *SEED, *mutant.run_args]})
    # both kinds stay: the choices the matrix holds unclaimed, and the variants of another requirement's, run here
    elsewhere = {c for c, (name, rid, _) in choice_cases().items() if mutants.variant(name).requirement != rid}
    assert held and elsewhere and not held & elsewhere
    problems = []
    by_variant = {name: (choice, rid) for choice, (name, rid, _) in choice_cases().items()}
    for result in _run_many(plan, tmp_path):
        choice, rid = by_variant[result["variant"]]
        got = (result["code"], result["statuses"].get(rid))
        want = (1, "fail") if result["label"] == "claimed" else (0, "observed")
        if got != want:
            problems.append(f"{choice} ({result['variant']}, {rid}) {result['label']}: expected {want}, got {got}\n"
                            f"{result['stdout'][-600:]}")
    assert not problems, "\n".join(problems)


# the unknown feature is refused by the command a user types; the unknown choice by the CLI's own entry point
# in this interpreter
@pytest.mark.parametrize(("flags", "as_command"), [(("--without", "logprob"), True),
                                                   (("--claim", "refuses-everything"), False)])
def test_an_unknown_feature_or_choice_is_one_line_and_exit_2(flags: tuple[str, ...], as_command: bool,
                                                             tmp_path: Path) -> None:
    out = run_either(["run", "--dry-run", *flags], tmp_path / "reports", env={"SGP_API_KEY": "k"},
                     as_command=as_command)
    assert out.code == 2 and "Traceback" not in out.output
    assert f"unknown {'feature' if flags[0] == '--without' else 'choice'} '{flags[1]}'" in out.output


def test_a_baseline_carries_the_claims_it_was_judged_under(tmp_path: Path) -> None:
    from conformance.config import ConfigError, resolve

    path = tmp_path / "baseline.toml"
    path.write_text('without = ["tools"]\nclaims = ["refuses-null"]\n\n[[accepted]]\nid = "SEM-008"\nreason = "r"\n',
                    encoding="utf-8")
    config = resolve({"baseline": str(path), "claims": "unknown-model-404"}, env={}, cwd=tmp_path)
    assert config.without == {"tools"} and config.claims == {"refuses-null", "unknown-model-404"}
    path.write_text('claims = ["refuses-everything"]\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown choice 'refuses-everything'"):
        resolve({"baseline": str(path)}, env={}, cwd=tmp_path)
