"""The mutation matrix: the suite catches every single-fault variant of the reference server, at the right
level, and stays quiet about the variants that only do what the contract leaves open.

For each mutant (tests/mutants/) the suite runs against it and must report the mutant's requirement as
`fail`, with the exit code its level calls for:

- MUST: 1 at `--fail-on must` (a smoke run, which judges every MUST);
- SHOULD: 0 at `--fail-on must` and 1 at `--fail-on should`;
- INFO: 0 at both (observations never fail a run).

One fault, one failure: no other requirement fails or errs beside the mutant's own (observations of open
points aside), but where ALSO_FAILS names the second failure as the right verdict.

Against each negative control, no MUST may fail, the run exits 0 at `--fail-on must`, and the only
findings are exactly the SHOULD/INFO requirements the control names (the open point, reported).

The runs share the test session's interpreter (`mutants.run_many`: the CLI's own entry point, its pytest
session nested in this one, against one in-process server per profile that hosts every variant) because a
fresh interpreter costs three times the run; `test_real_cli_agrees_with_the_shared_interpreter` runs a
few of them through the `sgp-conformance` command itself, to show both ways give the same verdicts. The
property mutants, which only generated cases reach, share it too: the cases a seed draws do not depend on
what the interpreter ran before (generation.reproducible, the coverage phase computed on a fresh
document), so a fixed seed finds the same fault here as in the command, and they are drawn once per
session (generation.draw keeps them by seed). The paced variants (held answers, streams spread over a
second), whose runs mostly wait, run in one process of their own beside the others (`PacedRuns`).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mutants
import pytest
from cli_runs import clean_environment, run_cli
from mutants import CONTROLS, MUTANTS, Invocation
from session_once import shared_directory

from conformance.contract import catalogue
from conformance.contract.profiles import PROFILES

# few generated cases: the hand-written tests catch every non-property mutant on their own
FEW = ("--max-examples", "1")
AREAS = {
    "auth-headers": ("BASIC", "AUTH", "HDR"),
    "validation": ("VAL", "FORM"),
    "errors": ("ERR", "MODEL"),
    "shape-json": ("RESP", "JSON"),
    "semantics": ("SEM",),
    "logprobs-tools": ("LOGP", "TOOL", "FMT"),
    "streaming": ("STRM",),
    "between-requests": ("AGREE", "CONC"),
    "properties": ("PROP",),
}


def _area(requirement: str) -> str:
    return next(name for name, prefixes in AREAS.items() if requirement.split("-")[0] in prefixes)


def level_of(mutant: mutants.Mutant, profile: str) -> str:
    """The level of the mutant's requirement under `profile` ("-" for a control)."""
    return catalogue.get(mutant.requirement).level_for(profile) if mutant.requirement else "-"


def invocations(name: str, profile: str) -> list[Invocation]:
    """The runs that prove one mutant killed (or one control harmless), labelled by what they check."""
    mutant = mutants.variant(name)
    # a fixed seed: the verdicts of the matrix never depend on the seed a run picks
    extra = (*mutant.run_args, "--seed", "1")
    level = level_of(mutant, profile)
    if mutant.requirement is None:
        return [Invocation("control", name, profile, ("--fail-on", "should", *FEW, *extra))]
    if level == catalogue.MUST and not any(a == "--max-examples" for a in mutant.run_args):
        return [Invocation("must", name, profile, ("--depth", "smoke", "--fail-on", "must", *extra))]
    if level == catalogue.MUST:
        # found by generation: the run needs the depth that generates (the coverage phase: standard)
        return [Invocation("must", name, profile, ("--fail-on", "must", *extra))]
    # one run at --fail-on should; what --fail-on must would make of the same results (exit 0: no MUST
    # failed) is read from them (problems_of), and test_real_cli_agrees... runs it once for real
    return [Invocation("should", name, profile, ("--fail-on", "should", *FEW, *extra))]


def expected_code(mutant: mutants.Mutant, label: str, profile: str) -> int:
    level = level_of(mutant, profile)
    if mutant.exit_code is not None:
        return mutant.exit_code
    if mutant.requirement is None:
        # controls run at --fail-on should: an open point reported at SHOULD fails that run, by design
        return int(any(catalogue.get(rid).level_for(profile) == catalogue.SHOULD for rid in mutant.allowed))
    if level == catalogue.INFO:
        return 0
    if level == catalogue.SHOULD and label == "must":
        return 0
    return 1


def name_requirement(name: str) -> str:
    requirement = mutants.variant(name).requirement
    assert requirement is not None, name
    return requirement


def expected_status(mutant: mutants.Mutant, profile: str) -> str:
    """INFO never fails: a mutant of an INFO requirement is observed."""
    return "observed" if level_of(mutant, profile) == catalogue.INFO else "fail"


# one fault, one failure: besides its own requirement a mutant fails none, but where a second failure is the
# right verdict. The openai SDK assembles a repeated tool-call id into a different call (shared/cases
# tool-call-id-every-delta: a rule on later fragments, and the SDK's disagreement with the suite's assembly)
ALSO_FAILS: dict[str, frozenset[str]] = {
    "strm_tool_identity_every_fragment": frozenset({"STRM-022"}),
    "strm_tool_id_changes": frozenset({"STRM-022"}),
}


def problems_of(result: dict[str, Any]) -> list[str]:
    """What is wrong with one run's outcome; empty when the mutant was caught as it should be."""
    mutant = mutants.variant(result["variant"])
    where = f"{result['variant']} [{result['profile']}, {' '.join(result['args'])}]"
    out: list[str] = []
    output = result["stdout"] + result["stderr"]
    if "Traceback" in output:
        out.append(f"{where}: a traceback in the output:\n{output[-1500:]}")
    missing = {"conformance.json", "junit.xml", "conformance.html"} - set(result["reports"])
    if missing:
        out.append(f"{where}: reports not written: {sorted(missing)}")
    statuses: dict[str, str] = result["statuses"]
    bad = {rid for rid, status in statuses.items() if status in ("fail", "error", "observed")}
    failed = {rid for rid, status in statuses.items() if status in ("fail", "error")}
    profile = result["profile"]
    if mutant.requirement is None:
        musts = {rid for rid in bad if catalogue.get(rid).level_for(profile) == catalogue.MUST}
        if musts:
            out.append(f"{where}: a MUST failed on behaviour the contract leaves open: {sorted(musts)}")
        if bad != mutant.allowed:
            # the open point is still reported, at its own level: the control shows it, the table says so
            out.append(f"{where}: expected exactly {sorted(mutant.allowed)} reported, got {sorted(bad)}")
    elif statuses.get(mutant.requirement) != expected_status(mutant, profile):
        out.append(f"{where}: expected {mutant.requirement} to be {expected_status(mutant, profile)}, it is "
                   f"{statuses.get(mutant.requirement)!r}; failed: {sorted(bad)}")
    elif failed - {mutant.requirement} - ALSO_FAILS.get(result["variant"], frozenset()):
        out.append(f"{where}: one fault, one failure: {mutant.requirement} failed, and also "
                   f"{sorted(failed - {mutant.requirement})}")
    elif level_of(mutant, profile) != catalogue.MUST:
        # a SHOULD or INFO fault never fails a run at --fail-on must: no MUST may fail beside it
        musts = {rid for rid in bad if catalogue.get(rid).level_for(profile) == catalogue.MUST}
        if musts:
            out.append(f"{where}: a {level_of(mutant, profile)} fault made MUST requirements fail: {sorted(musts)}")
    code = expected_code(mutant, result["label"], profile)
    if code == 3 and "--account-id" not in result["stdout"]:
        out.append(f"{where}: a refused account must be named as the fix:\n{result['stdout'][-800:]}")
    if result["code"] != code:
        out.append(f"{where}: exit code {result['code']}, expected {code} ({level_of(mutant, profile)} at "
                   f"--fail-on {'should' if result['label'] == 'should' else 'must'}); failed: {sorted(bad)}\n"
                   f"{result['stderr'][-600:]}")
    return out


@pytest.fixture(scope="module")
def hosts() -> Iterator[mutants.Hosts]:
    """The servers of every variant, one per profile, for all the runs of this module."""
    running = mutants.Hosts()
    yield running
    running.stop()


def plan_of(names: list[str]) -> list[Invocation]:
    return [inv for name in names for profile in mutants.variant(name).profiles for inv in invocations(name, profile)]


# a variant whose answers make the suite itself wait: its backoff before retrying a 429 without Retry-After
BACKED_OFF = frozenset({"err_429_without_retry_after"})


def paced(name: str) -> bool:
    """Whether a variant's runs mostly wait, by design: it holds its answers (`delay`: the slow, serialising
    and overlap variants), spreads its streams over time (`stream_seconds`) or is backed off from."""
    mutant = mutants.variant(name)
    return mutant.delay is not None or mutant.stream_seconds > 0 or name in BACKED_OFF


# far above the paced runs' normal time (about 35 s together), far below pytest-timeout's 900 s for the test
PACED_HANG_S = 600


class PacedRuns:
    """The runs of the paced variants of the selected groups, in one process of their own (`python tests/mutants
    run-many`: the same in-process runs, against that process's own servers), started with the module by the
    first xdist worker that asks (`shared_directory`: one process however the groups are shared out). Their
    seconds of waiting on held answers and paced streams overlap the other groups' runs instead of adding to
    them; a group reads its paced results when it reaches them (`results`), from whichever worker."""

    def __init__(self, plan: list[Invocation], work: Path, start: bool, shared: bool) -> None:
        self.plan = plan
        self.work = work
        self.shared = shared
        self._results: list[dict[str, Any]] | None = None
        self._process: subprocess.Popen[bytes] | None = None
        if not (plan and start):
            return
        plan_file = work / "plan.json"
        plan_file.write_text(json.dumps([i.as_dict() for i in plan]), encoding="utf-8")
        env = clean_environment()
        with (work / "output.txt").open("wb") as output:
            command = [sys.executable, str(Path(mutants.__file__).parent), "run-many", str(plan_file),
                       str(work / "results.json"), "--report-root", str(work / "reports")]
            self._process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env)

    def _wait(self) -> list[dict[str, Any]]:
        done, failed = self.work / "results.json", self.work / "results.json.failed"
        deadline = time.monotonic() + PACED_HANG_S
        while not done.exists():
            # the process is this worker's, or another's: a failure is written down (`.failed`); a process that
            # hangs writes its stacks where the hang guard of its runs puts them (cli_runs.hang_record)
            ended = self._process.poll() if self._process is not None else None
            if failed.exists() or ended is not None or time.monotonic() > deadline:
                output = (self.work / "output.txt").read_text(encoding="utf-8", errors="replace")
                why = "failed" if failed.exists() else f"exited {ended}" if ended is not None else \
                    f"gave no results in {PACED_HANG_S} s (its stacks: sgp-conformance-tests-hang-*.txt in the " \
                    f"temporary directory)"
                raise AssertionError(f"the paced runs' process {why}:\n{output[-3000:]}")
            time.sleep(0.1)
        results: list[dict[str, Any]] = json.loads(done.read_text(encoding="utf-8"))
        return results

    def results(self, wanted: list[Invocation]) -> list[dict[str, Any]]:
        """The results of `wanted` (each in the plan), in that order, once the process has written them."""
        if self._results is None:
            self._results = self._wait()
        found = [self._results[self.plan.index(inv)] for inv in wanted]
        for invocation, result in zip(wanted, found, strict=True):
            assert Invocation.from_dict(result) == invocation, result
        return found

    def stop(self) -> None:
        """Without xdist, end a process nobody will read (a failed group left it running); under xdist another
        worker may still read it, and it ends by itself (PACED_HANG_S at most)."""
        if self._process is not None and self._process.poll() is None and not self.shared:
            self._process.kill()
            self._process.wait()


@pytest.fixture(scope="module")
def paced_runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PacedRuns]:
    """The paced runs of the groups this session selected (a `-k` of one group starts only its own)."""
    selected = [item.callspec.params["group"] for item in request.session.items
                if getattr(item, "originalname", None) == "test_every_mutant_is_killed_at_its_level"]
    plan = [inv for group in selected for inv in plan_of(GROUPS[group]) if paced(inv.variant)]
    with shared_directory("paced", tmp_path_factory, request.config) as (work, first):
        runs = PacedRuns(plan, work, start=first, shared=hasattr(request.config, "workerinput"))
    yield runs
    runs.stop()


def run_group(names: list[str], tmp_path: Path, hosts: mutants.Hosts, paced_runs: PacedRuns) -> list[dict[str, Any]]:
    plan = plan_of(names)
    away = [inv for inv in plan if paced(inv.variant)]
    results = mutants.run_many([inv for inv in plan if inv not in away], tmp_path / "reports", hosts=hosts)
    results += paced_runs.results(away) if away else []
    assert len(results) == len(plan)
    return results


_BY_AREA: dict[str, list[str]] = {area: [n for n, m in MUTANTS.items() if _area(m.requirement or "") == area]
                                  for area in AREAS}
_BY_AREA["controls"] = list(CONTROLS)
# groups of at most GROUP_SIZE variants: short tests, so that the other xdist worker can even out the end of a
# session (one group of 25 controls at standard depth was a third of a worker's time on its own)
GROUP_SIZE = 8
GROUPS: dict[str, list[str]] = {
    f"{area}-{n // GROUP_SIZE + 1}" if len(names) > GROUP_SIZE else area: names[n:n + GROUP_SIZE]
    for area, names in _BY_AREA.items() for n in range(0, len(names), GROUP_SIZE)}


# the groups with paced variants last: their results come from PacedRuns, which has the others' time to finish
@pytest.mark.parametrize("group", sorted(GROUPS, key=lambda group: any(paced(name) for name in GROUPS[group])))
def test_every_mutant_is_killed_at_its_level(group: str, tmp_path: Path, hosts: mutants.Hosts,
                                             paced_runs: PacedRuns) -> None:
    results = run_group(GROUPS[group], tmp_path, hosts, paced_runs)
    problems = [p for result in results for p in problems_of(result)]
    assert not problems, "\n".join(problems)


# --- the matrix itself -------------------------------------------------------------------------------


def test_matrix_size_and_coverage() -> None:
    assert len(MUTANTS) >= 40
    areas = {m.requirement.split("-")[0] for m in MUTANTS.values() if m.requirement}
    assert {"AUTH", "HDR", "VAL", "ERR", "RESP", "JSON", "SEM", "LOGP", "TOOL", "FMT", "STRM", "PROP"} <= areas
    # every MUST of the hand-written suite has a mutant, except the documented exceptions
    untargeted = {r.id for r in catalogue.REQUIREMENTS if catalogue.MUST in (r.level, *dict(r.levels).values())
                  and not r.id.startswith("CLIENT")}
    untargeted -= {m.requirement for m in MUTANTS.values()}
    # HDR-004: no ASGI app sees a header's case; HDR-001: the preflight halts a run whose account is refused;
    # CONC-002: a rule broken only under overlap fails under its own ID (conc_stream_id_under_overlap fails
    # STRM-013), and CONC-002 is then not judged
    assert untargeted == {"HDR-004", "HDR-001", "CONC-002"}


@pytest.mark.parametrize("name", [*MUTANTS, *CONTROLS])
def test_variant_is_well_formed(name: str) -> None:
    mutant = mutants.variant(name)
    assert mutant.fault and mutant.profiles and set(mutant.profiles) <= set(PROFILES)
    assert (mutant.request is not None) or (mutant.response is not None) or (mutant.delay is not None)
    if mutant.requirement is not None:
        requirement = catalogue.get(mutant.requirement)
        assert all(requirement.applies_to(p) for p in mutant.profiles), "the requirement is not judged there"
        assert not mutant.allowed
    else:
        assert all(catalogue.get(rid).level_for(p) != catalogue.MUST for rid in mutant.allowed for p in mutant.profiles)


def test_kill_table_is_current() -> None:
    assert mutants.KILL_TABLE.read_text(encoding="utf-8") == mutants.kill_table(), (
        "docs/kill-table.md is out of date: run `python tests/mutants table > docs/kill-table.md`")


# --- the shared interpreter gives the verdicts the command gives ----------------------------------------


@pytest.mark.parametrize("name", ["sem_created_ms", "logp_top_unsorted", "open_refusal_403",
                                  "prop_message_not_object_served"])
def test_real_cli_agrees_with_the_shared_interpreter(name: str, hosts: mutants.Hosts, tmp_path: Path) -> None:
    for number, invocation in enumerate(invocations(name, "sgp")):
        report_dir = tmp_path / f"run{number}"
        args = mutants.run_args(name, "sgp", hosts.base_url("sgp"))  # run_cli adds --report-dir
        out = run_cli([*args, *invocation.args], report_dir, env={"SGP_API_KEY": mutants.KEY}, timeout=120)
        assert out.doc["run"]["configuration"]["account_id"] == mutants.ACCOUNT
        result = {**invocation.as_dict(), "code": out.code, "stdout": out.stdout, "stderr": out.stderr,
                  "statuses": {r["id"]: r["status"] for r in out.doc["results"]},
                  "reports": sorted(p.name for p in report_dir.iterdir())}
        assert problems_of(result) == []
        if invocation.label == "should" and level_of(mutants.variant(name), "sgp") == catalogue.SHOULD:
            # the same fault at --fail-on must: the run passes (the matrix reads this from the results)
            must = [a if a != "should" else "must" for a in invocation.args]
            again = run_cli([*args, *must], tmp_path / f"must{number}", env={"SGP_API_KEY": mutants.KEY}, timeout=120)
            assert again.code == 0, again.output[-2000:]
            assert {r["id"]: r["status"] for r in again.doc["results"]}[name_requirement(name)] == "fail"


def test_the_property_mutants_stay_clear_of_every_parameter_a_scripted_request_sends() -> None:
    """The unscripted-parameter mutants fault only what generation alone sends: a parameter FORM-001's
    requests carry is FORM-001's to find, and a mutant faulting it would fail two requirements."""
    from conformance.suite import request_forms

    base = {"model": mutants.MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
    sent = {key for forms in request_forms.CARRIED.values() for key in request_forms.body_for(forms, base, tool)}
    assert sent <= mutants.SCENARIO_PARAMS, sorted(sent - mutants.SCENARIO_PARAMS)
