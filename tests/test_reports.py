"""The reports of a real run: conformance.json against its schema, the HTML report's summary, matrix and
evidence, JUnit, and the HTML report's size at 1,000 results."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from agreement import agree
from cli_runs import Outcome
from jsonschema import Draft202012Validator
from report_fixtures import broken_run, broken_server  # noqa: F401 - fixtures

from conformance.contract import catalogue, document
from conformance.report.outcomes import SCHEMA_ID, gating, level_verdicts
from conformance.report.results import register_section

ROOT = Path(__file__).resolve().parents[1]
RESULT_SCHEMA = json.loads((ROOT / "schemas" / "conformance-result.json").read_text(encoding="utf-8"))
MAX_HTML_BYTES = 5 * 1024 * 1024


def validate(doc: dict[str, Any]) -> None:
    Draft202012Validator.check_schema(RESULT_SCHEMA)
    errors = sorted(Draft202012Validator(RESULT_SCHEMA).iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])


def result(doc: dict[str, Any], req_id: str) -> dict[str, Any]:
    return next(r for r in doc["results"] if r["id"] == req_id)


# -- conformance.json ------------------------------------------------------------------------------------------


def test_result_schema_is_2020_12_with_its_id() -> None:
    Draft202012Validator.check_schema(RESULT_SCHEMA)
    assert RESULT_SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert RESULT_SCHEMA["$id"] == SCHEMA_ID


def test_a_failing_run_writes_a_valid_conformance_json(broken_run: Outcome) -> None:  # noqa: F811
    assert broken_run.code == 1, broken_run.output[-3000:]
    doc = broken_run.doc
    validate(doc)
    assert doc["verdict"] == "not conformant" and doc["verdicts"]["MUST"] == "not conformant"
    assert doc["run"]["profile"] == "sgp" and doc["run"]["embedded"] is False
    assert doc["run"]["configuration"]["api_key"] == "***"
    assert doc["versions"]["suite"] and doc["versions"]["schemas"]
    requests = doc["requests"]
    assert requests["sent"] > 0 and sum(requests["by_status"].values()) >= requests["sent"]
    # the counts agree with the results, per level and in total
    for level in catalogue.LEVELS:
        mine = [r for r in doc["results"] if r["level"] == level]
        assert sum(doc["counts"][level].values()) == len(mine)
    assert sum(doc["counts"]["total"].values()) == len(doc["results"])
    failed = result(doc, "RESP-001")
    assert failed["status"] == "fail" and "id" in failed["message"]
    assert failed["violations"] and failed["violations"][0]["pointer"] == ""
    assert failed["violations"][0].get("schema_excerpt")
    assert failed["evidence"]["html"] == "conformance.html#evidence-RESP-001"
    assert {"basic"} <= {s["scenario"] for s in failed["evidence"]["scenarios"]}
    assert all(s["status"] == 200 for s in failed["evidence"]["scenarios"])
    assert failed["tests"] == ["test_response_shape.py::test_response_shape_resp_001[RESP-001]"]
    # every result says where the contract page states its rule
    assert failed["contract"] == "docs/contract.md#response-required"
    assert all(r["contract"] == catalogue.get(r["id"]).contract for r in doc["results"])


def test_the_result_schema_requires_the_contract_reference(broken_run: Outcome) -> None:  # noqa: F811
    doc = broken_run.doc
    for broken in (None, "CONTRACT.md Transport", "docs/contract.md#"):
        changed = json.loads(json.dumps(doc))
        if broken is None:
            del changed["results"][0]["contract"]
        else:
            changed["results"][0]["contract"] = broken
        assert list(Draft202012Validator(RESULT_SCHEMA).iter_errors(changed)), broken


def test_passing_results_carry_no_evidence(broken_run: Outcome) -> None:  # noqa: F811
    doc = broken_run.doc
    passed = [r for r in doc["results"] if r["status"] == "pass"]
    assert len(passed) > 50
    assert all(r["evidence"] is None and r["violations"] == [] and r["message"] == "" for r in passed)


def test_html_has_the_summary_the_matrix_and_the_evidence(broken_run: Outcome) -> None:  # noqa: F811
    page = (broken_run.report_dir / "conformance.html").read_text(encoding="utf-8")
    doc = broken_run.doc
    # the summary: target, profile, model, versions, date, duration, verdict per level, counts, requests
    summary = page[page.index('id="sgp-summary"'):page.index('id="sgp-failures"')]
    for text in (doc["run"]["target"], "sgp", "openai/gpt-4o-mini", f"sgp-conformance {doc['versions']['suite']}",
                 doc["versions"]["schemas_digest"], doc["run"]["started"][:10], "Duration", "NOT CONFORMANT",
                 f"{doc['requests']['sent']} (429 seen"):
        assert text in summary, text
    assert re.search(r"<th>MUST</th><td class=\"verdict-bad\">not conformant</td>", summary)
    # the matrix: one row per result, failures linked to their evidence
    matrix = page[page.index('id="sgp-matrix"'):page.index('id="results-table"')]
    assert matrix.count("<tr id=\"req-") == len(doc["results"])
    assert '<tr id="req-RESP-001" class="row-fail">' in matrix and 'href="#evidence-RESP-001"' in matrix
    assert 'href="#evidence-BASIC-001"' not in matrix
    # the evidence: collapsed, with the rule, pointer, schema excerpt, request, response and curl line
    evidence = page[page.index("<details id='evidence-RESP-001'"):]
    evidence = evidence[:evidence.index("</details>")]
    for text in ("<b>rule</b>", "missing required field", "schema excerpt", "&quot;required&quot;",
                 "<b>request</b>", "<b>response 200</b>", "x-request-id", "curl -sS -i -X POST",
                 "&quot;${SGP_API_KEY}&quot;"):
        assert text in evidence, text
    assert "<details id='evidence-RESP-001' class='sgp-evidence'>" in page  # no `open`: collapsed
    # what the contract says about the failed rule, quoted from the shipped page, with the reference: the
    # report is read where docs/ is not at hand
    assert "What the contract says" in evidence and "(docs/contract.md#response-required," in evidence
    quoted = evidence[evidence.index("<blockquote class='sgp-contract'>"):]
    quoted = quoted[:quoted.index("</blockquote>")]
    assert "<strong>6.1 Top level</strong>" in quoted and "<td><code>id</code></td>" in quoted
    assert document.passage_markdown("response-required").count("| `") == quoted.count("<td><code>")
    # the matrix gives each rule's reference as text
    assert '<div class="ref">docs/contract.md#response-required</div>' in matrix
    assert matrix.count('<div class="ref">docs/contract.md#') == len(doc["results"])
    # every evidence pointer of the JSON names an anchor that the page has
    for r in doc["results"]:
        if r["evidence"]:
            assert f"id='{r['evidence']['anchor']}'" in page
    # passing requirements have no evidence in the page
    assert "evidence-BASIC-001" not in page


def test_junit_names_carry_the_ids_and_only_small_properties(broken_run: Outcome) -> None:  # noqa: F811
    tree = ET.parse(broken_run.report_dir / "junit.xml")
    cases = tree.getroot().findall(".//testcase")
    assert len(cases) == len(broken_run.doc["results"])
    for case in cases:
        props = {p.get("name"): p.get("value") for p in case.findall("./properties/property")}
        assert set(props) == {"requirement", "level"}
        assert f"[{props['requirement']}]" in case.get("name", "")
        assert props["level"] == catalogue.get(props["requirement"]).level
    failed = [c for c in cases if c.find("failure") is not None]
    assert {c.get("name") for c in failed} >= {"test_response_shape_resp_001[RESP-001]"}
    # violations and evidence stay out of JUnit: no bodies, no headers
    text = (broken_run.report_dir / "junit.xml").read_text(encoding="utf-8")
    assert "sgp_evidence" not in text and "x-request-id" not in text and "chat.completion" not in text


def test_gating_counts_stale_and_expired_at_any_level() -> None:
    def r(level: str, status: str, expired: bool = False) -> dict[str, Any]:
        entry = {"reason": "x", "expires": None, "expired": expired} if expired else None
        return {"id": "X-001", "level": level, "status": status, "baseline": entry}

    assert gating([r("SHOULD", "fail"), r("INFO", "error"), r("MUST", "known"), r("MUST", "skip")], "must") == []
    assert len(gating([r("SHOULD", "fail")], "should")) == 1
    assert len(gating([r("INFO", "stale")], "must")) == 1
    assert len(gating([r("INFO", "error", expired=True)], "must")) == 1
    assert level_verdicts([r("SHOULD", "fail"), r("MUST", "pass")]) == {
        "MUST": "conformant", "SHOULD": "not conformant", "INFO": "not judged"}
    # a level where nothing was judged is not called conformant
    assert level_verdicts([r("MUST", "skip"), r("MUST", "known")])["MUST"] == "not judged"


# -- sections other plugins add -------------------------------------------------------------------------------


class _Manager:
    def __init__(self, plugin: Any) -> None:
        self.plugin = plugin

    def get_plugin(self, name: str) -> Any:
        return self.plugin


class _Config:
    def __init__(self, plugin: Any) -> None:
        self.pluginmanager = _Manager(plugin)


def test_other_plugins_add_sections_and_a_broken_one_costs_nothing_else() -> None:
    from conformance.report.results import ResultsCollector

    collector = ResultsCollector.__new__(ResultsCollector)
    collector.sections = {}
    register_section(_Config(collector), "census", lambda: {"fields": 3})  # type: ignore[arg-type]
    register_section(_Config(collector), "sdk", lambda: 1 / 0)  # type: ignore[arg-type]
    register_section(_Config(None), "ignored", dict)  # type: ignore[arg-type] - a worker: no collector
    assert set(collector.sections) == {"census", "sdk"}
    with pytest.raises(ValueError, match="core keys"):
        collector.add_section("results", dict)


# -- size at scale ----------------------------------------------------------------------------------------------

SYNTHETIC_CONFTEST = '''
from conformance.contract import catalogue

EXTRA = tuple(catalogue.Requirement(f"SYNA-{i:03d}", catalogue.MUST if i % 3 else catalogue.SHOULD,
                                    f"Synthetic requirement number {i}: the response obeys rule {i}.",
                                    "tests/test_reports.py", "response-required" if i % 3 else "unknown-headers")
              for i in range(1000))
catalogue.REQUIREMENTS = catalogue.REQUIREMENTS + EXTRA
catalogue.BY_ID.update({r.id: r for r in EXTRA})
'''

SYNTHETIC_TESTS = '''
import json

import pytest

from conformance.contract import catalogue
from conformance.checks import Violation
from conformance.transport.exchange import Exchange, RequestSpec, Response

IDS = [f"SYNA-{i:03d}" for i in range(1000)]
BODY = {"object": "chat.completion", "model": "m", "choices": [{"index": 0, "message": {"role": "assistant",
        "content": "word " * 760}, "finish_reason": "stop"}]}


def exchange(i):
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": f"case {i}"}]}).encode()
    spec = RequestSpec(f"case_{i}", headers={"content-type": "application/json", "x-api-key": "k"}, body=body)
    answer = json.dumps({**BODY, "created": i}).encode()
    return Exchange(f"case_{i}", "http://127.0.0.1:9/v4/beta/chat/completions", spec,
                    Response(200, [("content-type", "application/json"), ("x-request-id", f"req_{i}")], answer))


# what @requirement(ID) makes, for 1,000 IDs at once
PARAMS = [pytest.param(catalogue.get(rid), id=rid, marks=[pytest.mark.requirement(rid), pytest.mark.scenarios()])
          for rid in IDS]


@pytest.mark.parametrize("req", PARAMS)
def test_synthetic(req, judge):
    i = int(req.id[-3:])
    if i % 2:
        return
    judge.exchanges.append(exchange(i))
    judge([Violation(req.id, f"missing required field 'id' ({j})", "", f"case_{i}",
                     {"keyword": "required", "value": ["id", "created"]}) for j in range(3)])
'''


def test_html_report_of_1000_results_stays_under_5_mb(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(textwrap.dedent(SYNTHETIC_CONFTEST), encoding="utf-8")
    (tmp_path / "test_synthetic.py").write_text(textwrap.dedent(SYNTHETIC_TESTS), encoding="utf-8")
    reports = tmp_path / "reports"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", str(tmp_path), "-p", "conformance.plugin", "-p", "no:cacheprovider",
         "-q", "--no-header", "--tb=no", "--rootdir", str(tmp_path),
         "--sgp-base-url", "http://127.0.0.1:9", "--sgp-api-key", "sk-synthetic-key-123456",
         "--sgp-report-dir", str(reports), f"--html={reports / 'conformance.html'}", "--self-contained-html",
         f"--junitxml={reports / 'junit.xml'}"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, env=_env())
    # at --fail-on must a SHOULD failure is a skip in pytest's (and JUnit's) view, as the exit code treats it
    assert "333 failed, 500 passed, 167 skipped" in done.stdout, done.stdout[-3000:] + done.stderr[-3000:]
    html_file = reports / "conformance.html"
    size = html_file.stat().st_size
    assert size < MAX_HTML_BYTES, f"{size} bytes"
    page = html_file.read_text(encoding="utf-8")
    doc = json.loads((reports / "conformance.json").read_text(encoding="utf-8"))
    validate(doc)
    synthetic = [r for r in doc["results"] if r["id"].startswith("SYNA-")]
    assert len(synthetic) == 1000
    assert doc["counts"]["total"]["fail"] == 500 and doc["counts"]["total"]["pass"] == 500
    assert page.count('<tr id="req-SYNA-') == 1000
    assert page.count("class='sgp-evidence'") == 500
    # past the evidence budget an exchange keeps its curl line but not its bodies
    assert "evidence budget is spent" in page
    assert page.count("curl -sS -i -X POST") >= 500


def _env() -> dict[str, str]:
    # no SGP_* settings of the developer's shell, and no xdist worker variables of this session
    return {k: v for k, v in os.environ.items() if not k.startswith(("SGP_", "PYTEST_"))}


# -- the CI example -----------------------------------------------------------------------------------------------


def test_the_github_actions_example_runs_gates_and_uploads() -> None:
    import yaml

    workflow = yaml.safe_load((ROOT / "examples" / "ci" / "github-actions.yml").read_text(encoding="utf-8"))
    job = workflow["jobs"]["conformance"]
    steps = job["steps"]
    scripts = "\n".join(str(s.get("run", "")) for s in steps)
    assert "${{ vars.SERVER_CMD }}" in scripts  # the server under test is started
    assert "sgp-conformance run --base-url \"$SGP_BASE_URL\"" in scripts and "--baseline" in scripts
    assert "sgp-conformance diff last-release/conformance.json reports/conformance.json" in scripts
    assert job["env"]["SGP_API_KEY"] == "${{ secrets.SGP_API_KEY }}"
    upload = next(s for s in steps if "upload-artifact" in str(s.get("uses", "")))
    assert {"reports/junit.xml", "reports/conformance.html"} <= set(upload["with"]["path"].split())
    assert upload["if"] == "always()"
    # the last step fails the job on a non-zero exit of the run, then of the diff; pipes keep their exit codes
    assert steps[-1]["run"].count("exit \"$code\"") == 2
    assert job["defaults"]["run"]["shell"] == "bash"
    # every script is valid bash once the expressions are filled in
    for step in steps:
        if "run" in step:
            script = re.sub(r"\$\{\{[^}]*\}\}", "x", step["run"])
            subprocess.run(["bash", "-n", "-c", script], check=True)


# -- the exit code and the one-screen summary ----------------------------------------------------------------------


def _doc(*results: tuple[str, ...], **run: Any) -> dict[str, Any]:
    """A conformance.json with these (id, level, status[, not_run]) results and the verdict results.py gives."""
    from conformance.report.outcomes import coverage, verdict

    rows = [{"id": r[0], "level": r[1], "status": r[2], "not_run": r[3] if len(r) > 3 else None, "message": "",
             "evidence": None, "baseline": None} for r in results]
    unreachable = run.pop("unreachable", None)
    return {"results": rows, "unreachable": unreachable, "run": run, "coverage": coverage(rows),
            "verdict": verdict(rows, "must", unreachable=unreachable, **run)}


@pytest.mark.parametrize(("doc", "code", "said"), [
    (_doc(("BASIC-001", "MUST", "pass"), ("AUTH-005", "SHOULD", "fail")), 0, "conformant"),
    (_doc(("BASIC-001", "MUST", "known")), 4, "not judged"),
    (_doc(("BASIC-001", "MUST", "pass"), ("AUTH-001", "MUST", "known")), 0, "conformant"),
    (_doc(("BASIC-001", "MUST", "fail")), 1, "not conformant"),
    (_doc(("BASIC-001", "MUST", "pass"), ("HDR-007", "INFO", "stale")), 1, "not conformant"),
    # INFO never fails: an observation is not a failure
    (_doc(("BASIC-001", "MUST", "pass"), ("HDR-007", "INFO", "observed")), 0, "conformant"),
    (_doc(("BASIC-001", "MUST", "pass"), unreachable="connection refused by 127.0.0.1:9"), 3, "target unreachable"),
    # nothing to judge is no failure, and what was judged passed
    (_doc(("BASIC-001", "MUST", "pass"), ("SEM-001", "MUST", "not judged")), 0, "conformant"),
    # a selection leaves gating requirements out: partial, never conformant
    (_doc(("BASIC-001", "MUST", "pass"), ("SEM-001", "MUST", "not run", "selection")), 0, "partial"),
    # a setting (--clients, depth) leaves them out by design: still conformant
    (_doc(("BASIC-001", "MUST", "pass"), ("CLIENT-001", "MUST", "not run", "settings")), 0, "conformant"),
    (_doc(("BASIC-001", "MUST", "pass"), ("SEM-001", "MUST", "not run", "budget")), 4, "incomplete"),
    (_doc(("BASIC-001", "MUST", "pass"), ("SEM-001", "MUST", "fail"), interrupted="SIGINT"), 130, "interrupted"),
    (_doc(("BASIC-001", "MUST", "pass"), interrupted="SIGTERM"), 143, "interrupted"),
    (_doc(("BASIC-001", "MUST", "not run", "halted"), halted="the configured key was refused (HTTP 401)"), 3,
     "key refused"),
])
def test_exit_codes(doc: dict[str, Any], code: int, said: str) -> None:
    from conformance.report.summary import exit_code

    got, line = exit_code(doc, "must")
    assert (got, line.split(":")[0]) == (code, said), line


def test_a_refused_key_is_named_and_exits_3(broken_server: Any, tmp_path: Path) -> None:  # noqa: F811
    from cli_runs import run_cli

    out = run_cli(["run", "--base-url", broken_server.base_url, "--account-id", "acct-1", "-k", "BASIC-001"],
                  tmp_path / "reports", env={"SGP_API_KEY": "sk-not-the-right-key-000"})
    assert out.code == 3, out.output[-2000:]
    assert "KEY REFUSED: the configured key was refused (HTTP 401)" in out.stdout
    # the run stopped at the preflight: one request, and the reports say why rather than "not conformant"
    assert out.doc["verdict"] == "key refused" and out.doc["requests"]["sent"] == 1
    assert out.doc["run"]["halted"].startswith("the configured key was refused (HTTP 401)")
    assert {r["status"] for r in out.doc["results"]} == {"not run"}
    assert "KEY REFUSED" in (out.report_dir / "conformance.html").read_text(encoding="utf-8")
    # and junit.xml says the same as the rest
    agree(out)


def test_each_failure_shows_its_own_evidence_in_level_order(broken_run: Outcome) -> None:  # noqa: F811
    from conformance.report.html import evidence_html
    from conformance.report.outcomes import Result

    page = (broken_run.report_dir / "conformance.html").read_text(encoding="utf-8")
    # every failure's entry shows its request and response itself, none points "above" into another collapsed
    # entry (RESP-001's shares the `basic` exchange with the passing requirements' evidence)
    failed = [r["id"] for r in broken_run.doc["results"] if r["status"] == "fail"]
    assert "RESP-001" in failed
    for req_id in failed:
        entry = page[page.index(f"<details id='evidence-{req_id}'"):]
        entry = entry[:entry.index("</details>\n") if "</details>\n" in entry else len(entry)]
        assert "<b>request</b>" in entry and "<b>response 200</b>" in entry, req_id
    assert ">above<" not in page and "as shown" not in page
    # failures by level, observations last, whatever the catalogue's order
    results = [Result("HDR-007", "INFO", "s", "x", "c", status="observed"),
               Result("SEM-005", "SHOULD", "s", "x", "c", status="fail"),
               Result("RESP-001", "MUST", "s", "x", "c", status="fail")]
    shown = evidence_html(results)
    assert shown.index("evidence-RESP-001") < shown.index("evidence-SEM-005") < shown.index("evidence-HDR-007")


def test_levels_a_smoke_run_leaves_out_are_shown_neutral(earlier_run: Outcome) -> None:
    page = (earlier_run.report_dir / "conformance.html").read_text(encoding="utf-8")
    levels = page[page.index('id="sgp-levels"'):]
    levels = levels[:levels.index("</table>")]
    for level in ("SHOULD", "INFO"):
        row = next(line for line in levels.splitlines() if line.startswith(f"<tr><th>{level}</th>"))
        assert 'class="verdict-neutral"' in row and "left out (depth smoke" in row, row
        assert "verdict-bad" not in row
