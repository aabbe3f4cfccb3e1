"""Do no harm: a run touches no file of the user's, even one holding the key in a report directory it is
pointed at; a key that is a common word, a field name or part of the report path leaves every report whole
and is not taken for a leak; a mistyped flag or a user's own junit.xml stops the run before it writes.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from agreement import BAD, REPORTS, agree, markup_intact, one_line, plant, read_page, snapshot
from cli_runs import REFERENCE_KEY, Outcome, run_cli, run_in_process
from counting import counting_server
from report_fixtures import CANARY, echo_app, serve

from conformance.redact import MASK
from conformance.server import RunningServer

USER_FILES = {".env": "SGP_API_KEY={key}\nOTHER=1\n", "src/settings.py": 'API_KEY = "{key}"\nDEBUG = False\n',
              "notes.txt": "the key is {key}, base64 and all\n"}


def write_user_files(directory: Path, key: str) -> dict[str, bytes]:
    for name, text in USER_FILES.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.format(key=key), encoding="utf-8")
    return snapshot(directory)


@pytest.fixture(scope="module")
def echo_server() -> Iterator[RunningServer]:
    server = serve(echo_app, CANARY)
    yield server
    server.stop()


@pytest.mark.parametrize("target", ["reference", "echoing"])
def test_user_files_holding_the_key_are_left_byte_identical(target: str, echo_server: RunningServer,
                                                             tmp_path: Path) -> None:
    # the user's project directory given as the report directory: its files hold the key
    project = tmp_path / "project"
    if target == "echoing":
        key, flags = CANARY, ["--base-url", echo_server.base_url, "--account-id", "acct-1"]
        before = write_user_files(project, key)
        out = run_cli(["run", *flags, "--depth", "smoke"], project, env={"SGP_API_KEY": key}, timeout=120)
    else:
        with counting_server("sgp") as (server, _):
            before = write_user_files(project, REFERENCE_KEY)
            out = run_in_process(["run", "--base-url", server.base_url, "--depth", "smoke"], project,
                                 env={"SGP_API_KEY": REFERENCE_KEY})
    doc = agree(out)
    after = snapshot(project)
    # the user's files are as they were, byte for byte; the run added its three reports and nothing else
    assert {name: after.get(name) for name in before} == before
    assert set(after) == set(before) | set(REPORTS)
    if target == "echoing":
        # the echo is the server's fault (AUTH-007), and the rescan found no leak in the run's own reports
        assert out.code == 1 and {r["id"] for r in doc["results"] if r["status"] in BAD} >= {"AUTH-007"}
    else:
        assert out.code == 0 and doc["verdict"] == "conformant"


RESULT_SCHEMA = json.loads((Path(__file__).parent.parent / "schemas" / "conformance-result.json").read_text(
    encoding="utf-8"))
# keys a scrubber could confuse with the report's own words: common words, a field name, a part of the path
PATH_PART = "rq7path"
# and the run's own names and dates: `model` and `2026` once masked conformance.json's own keys and times
KEYS = ["test", "token", "a", "conformance", "prompt_tokens", "model", "2026", PATH_PART]
# keys that also occur in a conformant answer: the reference server's fields (prompt_tokens, model) and its
# system_fingerprint (fp_sgp_conformance_ref)
IN_ANSWERS = {"conformance", "prompt_tokens", "model"}


Servers = Callable[..., RunningServer]


def json_keys(value: Any) -> Iterator[str]:
    """Every object key in a JSON document, at any depth."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from json_keys(v)
    elif isinstance(value, list):
        for v in value:
            yield from json_keys(v)


def short_key_run(key: str, tmp_path: Path, reference_server: Servers, *extra: str) -> Outcome:
    server = reference_server("sgp", api_keys=(key,))
    args = ["run", "--base-url", server.base_url, "--depth", "smoke", *extra]
    reports, env = tmp_path / f"reports-{PATH_PART}", {"SGP_API_KEY": key}
    if key == KEYS[0] and not extra:
        # one key through the command itself, where output written by any means is what the tests read
        return run_cli(args, reports, env=env, timeout=120)
    # the others in this interpreter: what they check is in the reports, and the run's own leak scan
    return run_in_process(args, reports, env=env)


@pytest.mark.parametrize("key", KEYS)
def test_a_key_that_is_a_common_word_leaves_every_report_whole(key: str, tmp_path: Path,
                                                               reference_server: Servers) -> None:
    out = short_key_run(key, tmp_path, reference_server)
    assert "SECRET LEAK" not in out.output, out.output[-3000:]
    reports = out.report_dir
    # each report parses with a plain parser, and the page has its parts, its markup unmasked
    ET.parse(reports / "junit.xml")
    json.loads((reports / "conformance.json").read_text(encoding="utf-8"))
    markup_intact(reports / "conformance.html")
    page = read_page(reports / "conformance.html")
    assert {"sgp-summary", "sgp-failures", "sgp-matrix", "results-table"} <= page.ids
    doc = agree(out)
    # conformance.json keeps the form its schema gives it, its own names and times whole
    jsonschema.Draft202012Validator(RESULT_SCHEMA).validate(doc)
    if key not in IN_ANSWERS:
        # the key is masked where it stands alone, never inside a longer name: the reports' own words and the
        # answers' field names (max_tokens, completion_tokens_details) stay whole
        assert not [k for k in json_keys(doc) if MASK in k], [k for k in json_keys(doc) if MASK in k][:10]
        assert '"max_tokens"' in (reports / "conformance.json").read_text(encoding="utf-8")
    failed = {r["id"] for r in doc["results"] if r["status"] in BAD}
    # as with a long key: the reference server conforms
    assert failed == set() and out.code == 0 and doc["verdict"] == "conformant", out.output[-3000:]


@pytest.mark.parametrize("key", sorted(IN_ANSWERS))
def test_a_key_that_occurs_in_a_conformant_answer_is_no_echo(key: str, tmp_path: Path,
                                                             reference_server: Servers) -> None:
    out = short_key_run(key, tmp_path, reference_server, "-k", "AUTH-007 or PROP-001")
    doc = agree(out)
    by_id = {r["id"]: r for r in doc["results"]}
    # an occurrence of such a key proves no echo: the rule is applied to the distinctive wrong key the suite
    # sends (pass), never to the ordinary one (tests/test_checks_transport.py: alone, it is not judged)
    assert (by_id["AUTH-007"]["status"], by_id["PROP-001"]["status"]) == ("pass", "pass")


def test_a_mistyped_flag_leaves_the_earlier_reports_in_place(earlier_run: Outcome, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    before = plant(earlier_run.report_dir, reports)
    out = run_in_process(["run", "--depht", "smoke"], reports)
    assert out.code == 2, out.output[-3000:]
    assert one_line(out.stderr) == "sgp-conformance run: unknown option --depht: did you mean --depth?"
    assert "reference server" not in out.stdout
    assert snapshot(reports) == before


@pytest.mark.parametrize(("selection", "says"), [
    ("bad((", "-k 'bad((' is not a selection expression"),
    ("NO-SUCH-REQUIREMENT", "the selection matched no requirement"),
])
def test_a_selection_that_judges_nothing_leaves_the_earlier_reports_in_place(
        selection: str, says: str, earlier_run: Outcome, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    before = plant(earlier_run.report_dir, reports)
    out = run_in_process(["run", "--depth", "smoke", "-k", selection], reports)
    assert out.code == 2, out.output[-3000:]
    assert says in out.stderr and "Traceback" not in out.output
    assert snapshot(reports) == before


def test_a_junit_xml_of_the_user_is_never_replaced(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "junit.xml").write_text('<testsuite name="my-own-tests" tests="1"><testcase name="t"/></testsuite>',
                                       encoding="utf-8")
    before = snapshot(reports)
    with counting_server("sgp") as (server, count):
        out = run_in_process(["run", "--base-url", server.base_url, "--depth", "smoke"], reports,
                             env={"SGP_API_KEY": REFERENCE_KEY})
        sent = count.count
    assert out.code == 2, out.output[-3000:]
    line = one_line(out.stderr)
    assert f"{reports / 'junit.xml'} exists and was not written by sgp-conformance" in line, line
    assert "--report-dir" in line
    # checked before anything started: nothing sent, nothing written, the file as it was
    assert sent == 0
    assert snapshot(reports) == before
