"""What the property tests send: every positive case holds to the strict reading of the contract (both
profiles), and a negative case counts only where the profile's lenient reading refuses it too."""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
import unittest
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.database import InMemoryExampleDatabase
from schemathesis import GenerationMode

from conformance.config import Config
from conformance.contract import schema_store
from conformance.contract.profiles import OPENAI, SGP, Profile
from conformance.contract.request_rules import (
    canonical,
    combination_problems,
    invalid_under,
    strict_problems,
    why_invalid,
)
from conformance.suite import generation
from conformance.suite.ahead import CHUNK, Ahead
from conformance.suite.generation import capped, draw, operation, portable, selected_coverage

PROFILES = [SGP, OPENAI]


def _config(profile: Profile) -> Config:
    return Config(profile=profile.name, max_tokens=16)


def _sent(body: dict[str, Any]) -> Any:
    """The body as it goes on the wire and a strict parser reads it back."""
    return json.loads(json.dumps(body, allow_nan=False))


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.name)
def test_every_generated_positive_body_holds_to_the_strict_reading(profile: Profile) -> None:
    config = _config(profile)

    @settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=operation(profile.name).as_strategy(GenerationMode.POSITIVE))
    def check(case: Any) -> None:
        body = portable(case.body, profile, config)
        if body is None:
            return  # not Unicode text: never sent
        assert strict_problems(_sent(body)) == [], body
        assert body["model"] == config.model and min(body.get("max_tokens", 16), 16) <= 16

    check()


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.name)
def test_every_coverage_positive_body_holds_to_the_strict_reading(profile: Profile) -> None:
    positive, _ = selected_coverage(profile.name, "deep")
    assert positive
    for raw in positive:
        body = portable(raw, profile, _config(profile)) if isinstance(raw, dict) else None
        if body is not None:
            assert strict_problems(_sent(body)) == [], body


def test_the_boundaries_the_issue_names_are_sent_at_standard_depth() -> None:
    positive, negative = selected_coverage("sgp", "standard")
    sent = [json.dumps(b, sort_keys=True) for b in positive]
    for fragment in ('"temperature": 2', '"top_p": 0', '"n": 128', '"top_logprobs": 20', '"seed": -2147483648'):
        assert any(fragment in b for b in sent), fragment
    refused = [json.dumps(b, sort_keys=True) for b in negative]
    for fragment in ('"temperature": 3', '"n": 129', '"top_logprobs": 21', '"top_p": -1'):
        assert any(fragment in b for b in refused), fragment
    assert selected_coverage("sgp", "smoke") == ([], [])


def test_integral_floats_become_integers_and_negative_zero_zero() -> None:
    body = canonical({"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1.0,
                      "n": 2.0, "temperature": -0.0, "seed": 3.0})
    assert body["max_tokens"] == 1 and isinstance(body["max_tokens"], int)
    assert isinstance(body["n"], int) and isinstance(body["seed"], int)
    assert json.dumps(body["temperature"]) == "0.0"
    # a strict reader refuses 1.0 where an integer is documented
    assert strict_problems({"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1.0})


@pytest.mark.parametrize(("body", "field"), [
    ({"top_logprobs": 2}, "top_logprobs"),
    ({"tool_choice": "required"}, "tool_choice"),
    ({"tools": [{"type": "function", "function": {"name": "a"}}],
      "tool_choice": {"type": "function", "function": {"name": "b"}}}, "tool_choice"),
    ({"stream_options": {"include_usage": True}}, "stream_options"),
])
def test_cross_field_rules(body: dict[str, Any], field: str) -> None:
    assert [f for f, _ in combination_problems(body)] == [field]


@given(st.sampled_from(["top_logprobs", "tool_choice", "stream_options"]))
def test_portable_repairs_every_combination(field: str) -> None:
    broken = {"model": "m", "messages": [{"role": "user", "content": "hi"}], field: {
        "top_logprobs": 3, "tool_choice": {"type": "function", "function": {"name": "x"}},
        "stream_options": {"include_usage": True}}[field]}
    body = portable(broken, SGP, _config(SGP))
    assert body is not None and combination_problems(body) == []


def test_the_lenient_reading_of_each_profile() -> None:
    roleless = {"model": "m", "messages": [{"content": "hi"}]}
    # sgp: the documented message type is free-form; refusing it is VAL-005's (SHOULD), not PROP-003's
    assert not invalid_under(roleless, SGP) and invalid_under(roleless, OPENAI)
    empty = {"model": "m", "messages": []}
    assert not invalid_under(empty, SGP) and invalid_under(empty, OPENAI)
    # pydantic's lax mode reads "2" as 2 and 1 as true: no negative case under sgp
    lax = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "n": "2", "stream": 1}
    assert not invalid_under(lax, SGP) and invalid_under(lax, OPENAI)
    # what no reading accepts is invalid everywhere, and says why
    bad = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 3}
    assert invalid_under(bad, SGP) and invalid_under(bad, OPENAI)
    assert why_invalid(bad, SGP) == "/temperature: 3 is greater than the maximum of 2"


# bodies Prism accepted (mocking the suite's own OpenAPI document) in the interop run of 2026-11-30, which
# PROP-003 counted as invalid under sgp: the only fault of each is a combination that OpenAI refuses and no
# SGP source mentions
PRISM_ACCEPTED = [
    {"tools": [], "max_tokens": 1, "model": "openai/gpt-4o-mini", "temperature": 0.31621906052005283,
     "stream_options": {"include_usage": True}, "top_k": 31, "messages": [{"role": "user", "content": "hi"}]},
    {"parallel_tool_calls": True, "logprobs": True, "tool_choice": "required", "model": "openai/gpt-4o-mini",
     "response_format": {"type": "text"}, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 16},
    {"tools": [{"type": "function", "function": {"name": "a"}}], "tool_choice": {"type": "function",
     "function": {"name": "\U0002b145\u00fc\u00ab"}}, "model": "m", "messages": [{"role": "user", "content": "hi"}]},
]


@pytest.mark.parametrize("body", PRISM_ACCEPTED)
def test_only_the_stated_combination_is_a_negative_case_under_sgp(body: dict[str, Any]) -> None:
    # OpenAI refuses these: a negative case under openai, none under sgp (the contract leaves them open)
    assert invalid_under(body, OPENAI) and why_invalid(body, OPENAI)
    assert not invalid_under(body, SGP) and why_invalid(body, SGP) is None
    # the positives still hold to every rule: strict_problems reads the combinations under every profile
    assert strict_problems(body)
    # the one CONTRACT.md states (top_logprobs "needs logprobs true") is invalid everywhere
    stated = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "top_logprobs": 2}
    assert invalid_under(stated, SGP) and invalid_under(stated, OPENAI) and why_invalid(stated, SGP)


def test_negative_cases_carry_the_token_cap() -> None:
    config = _config(SGP)
    assert capped({"model": "m", "temperature": 9}, SGP, config)["max_tokens"] == 16
    # the cap parameter is itself the invalid part: it stays, and the other one bounds the answer
    capped_body = capped({"model": "m", "max_tokens": -1}, SGP, config)
    assert capped_body["max_tokens"] == -1 and capped_body["max_completion_tokens"] == 16
    assert capped([1, 2], SGP, config) == [1, 2]


def _draw(profile: Profile, count: int = 60) -> list[str]:
    from hypothesis import seed

    from conformance.suite.generation import reproducible

    drawn: list[str] = []

    @seed(12345)
    @settings(max_examples=count, deadline=None, database=None, suppress_health_check=list(HealthCheck),
              phases=[__import__("hypothesis").Phase.generate])
    @given(case=operation(profile.name).as_strategy(GenerationMode.POSITIVE))
    def collect(case: Any) -> None:
        drawn.append(json.dumps(case.body, sort_keys=True))

    with reproducible():
        collect()
    return drawn


def test_a_seed_draws_the_same_cases_whatever_local_code_is_loaded(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # Hypothesis mixes in constants of local modules; a user's project (or this checkout) must not change
    # which cases a seed draws
    before = _draw(SGP)
    package = tmp_path / "userproject"
    package.mkdir()
    (package / "settings_of_a_user.py").write_text(
        "".join(f'NAME_{i} = "c{i}"\nCOUNT_{i} = {i}\nRATE_{i} = {i}.5\n' for i in range(300)))
    monkeypatch.syspath_prepend(str(package))
    __import__("settings_of_a_user")
    assert _draw(SGP) == before


@pytest.mark.parametrize("profile", ["sgp", "openai"])
def test_coverage_cases_kept_between_runs_are_the_ones_computed(profile: str, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The coverage phase is computed once per document and schemathesis version and read back after: what
    is read back is exactly what was computed, and a damaged file is computed again, not believed."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    generation.coverage_cases.cache_clear()
    try:
        computed = generation.compute_coverage_cases(profile)
        first = generation.coverage_cases(profile)
        path = generation._cache_file(profile)
        assert path.is_file() and first == computed
        generation.coverage_cases.cache_clear()
        assert generation.coverage_cases(profile) == computed
        path.write_text("[[\"positive\", {}", encoding="utf-8")
        generation.coverage_cases.cache_clear()
        assert generation.coverage_cases(profile) == computed
        assert generation._read_cache(path) == computed
    finally:
        generation.coverage_cases.cache_clear()


def test_the_generator_process_draws_the_cases_drawn_here() -> None:
    """The cases drawn ahead in a second process are the ones the property tests would draw themselves:
    the same seed, strategy and preparation, so a run's cases do not depend on where they were drawn."""
    config = Config(seed=7, max_examples=25)
    here = {mode: draw(mode, SGP, config) for mode in ("positive", "negative")}
    ahead = Ahead(config, "sgp")
    try:
        positive = list(ahead.cases("positive", lambda: pytest.fail("drawn here"), 120))
        negative = list(ahead.cases("negative", lambda: pytest.fail("drawn here"), 120))
    finally:
        ahead.close()
    assert ahead.failed is None
    # more than one chunk each: the sequence survives the streaming
    assert len(positive) > CHUNK and positive == here["positive"]
    assert len(negative) > CHUNK and negative == here["negative"]


def test_the_cases_stream_before_the_generator_is_done() -> None:
    """The first case is taken while the generator has not finished the mode (a deep run's 300 cases)."""
    ahead = Ahead(Config(seed=7, max_examples=300), "sgp")
    try:
        stream = ahead.cases("positive", lambda: pytest.fail("drawn here"), 120)
        first = next(stream)
        assert first is not None and not ahead._channels["positive"].complete
    finally:
        ahead.close()


ONE_CHUNK_THEN_GARBAGE = ("import pickle, sys; out = sys.stdout.buffer;"
                          " pickle.dump(('positive', [{'sent': 'by the child'}]), out); out.write(b'garbage')")


@pytest.mark.parametrize("command", [
    [sys.executable, "-c", "import sys; sys.stdout.write('not a pickle')"],
    [sys.executable, "-c", "raise SystemExit(3)"],
    [sys.executable, "-c", "import time; time.sleep(30)"],
    # no process at all (in a run: no file descriptors left, a broken interpreter path)
    ["/nonexistent/sgp-conformance-python"],
])
def test_a_generator_that_fails_leaves_the_drawing_to_the_tests(command: list[str]) -> None:
    config = Config(seed=7, max_examples=20)
    ahead = Ahead(config, "sgp", command=command)
    try:
        taken = list(ahead.cases("positive", lambda: draw("positive", SGP, config), 1))
        assert ahead.failed
    finally:
        ahead.close()
    assert taken == draw("positive", SGP, config)


def test_a_generator_that_fails_midway_is_continued_where_it_stopped() -> None:
    config = Config(seed=7, max_examples=20)
    ahead = Ahead(config, "sgp", command=[sys.executable, "-c", ONE_CHUNK_THEN_GARBAGE])
    try:
        taken = list(ahead.cases("positive", lambda: draw("positive", SGP, config), 30))
        assert ahead.failed
    finally:
        ahead.close()
    # the case it sent is kept; the rest come from the in-process draw, from where the child stopped
    assert taken == [{"sent": "by the child"}, *draw("positive", SGP, config)[1:]]


def test_only_the_modes_asked_for_are_drawn_ahead() -> None:
    """A run of PROP-001 alone starts no process for the invalid cases; were they asked for after all,
    they would be drawn here, the same cases."""
    config = Config(seed=7, max_examples=20)
    ahead = Ahead(config, "sgp", modes=("positive",))
    try:
        assert set(ahead._channels) == {"positive"}
        negative = list(ahead.cases("negative", lambda: draw("negative", SGP, config), 30))
    finally:
        ahead.close()
    assert negative == draw("negative", SGP, config)


# -- every body, however malformed, is read without a crash -------------------------------------------------

# the names the request rules and the schema look for, at any depth, so random bodies reach every branch
_NAMES = sorted({*schema_store.load("chat-completion-request")["properties"], "function", "name", "type", "role",
                 "content", "parameters", "description", "strict", "include_usage", "text", "tool_calls"})
_ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(_NAMES) | st.text(max_size=3),
                                                                inner, max_size=4),
    max_leaves=24)


# the shapes the cross-field rules read (tools, a named tool_choice), with any JSON where a value goes
_TOOLS = st.lists(st.fixed_dictionaries({"type": st.just("function") | _ANY_JSON}, optional={
    "function": st.fixed_dictionaries({}, optional={"name": _ANY_JSON, "parameters": _ANY_JSON,
                                                    "description": _ANY_JSON})}), max_size=3)
_TOOL_CHOICE = st.sampled_from(["none", "auto", "required"]) | st.fixed_dictionaries(
    {"type": st.just("function"), "function": st.fixed_dictionaries({"name": st.text(max_size=3) | _ANY_JSON})})
_BODIES = st.fixed_dictionaries({}, optional={
    "tools": _TOOLS | _ANY_JSON, "tool_choice": _TOOL_CHOICE | _ANY_JSON, "messages": _ANY_JSON,
    "model": _ANY_JSON, "logprobs": _ANY_JSON, "top_logprobs": _ANY_JSON, "stream": _ANY_JSON,
    "stream_options": _ANY_JSON}) | st.dictionaries(st.sampled_from(_NAMES), _ANY_JSON, max_size=8)


# the body the reference server answered 500 to (deep run, seed 142), cut to what set it off
@example({"tools": [{"type": "function", "function": {"name": [{"x": 1.5}], "parameters": {}}}],
          "tool_choice": {"type": "function", "function": {"name": ""}}})
@settings(max_examples=300, deadline=None)
@given(_BODIES)
def test_any_body_is_judged_without_a_crash(body: dict[str, Any]) -> None:
    """The reference server answered 500 to a tool whose function name was a list (a set of names met an
    unhashable one): the rules shared by the server, the generator and PROP-003 read any JSON body."""
    from conformance.server.errors import InvalidRequest
    from conformance.server.request import check_body

    combination_problems(body)
    strict_problems(body)
    for profile in PROFILES:
        invalid_under(body, profile)
        why_invalid(body, profile)
    with contextlib.suppress(InvalidRequest):
        check_body(body)


def test_a_second_draw_with_the_same_seed_is_a_copy_of_the_first() -> None:
    # generation.draw keeps what a seed drew (a test session judges many servers with one seed): a second
    # draw for another target is the same cases, as copies, and drawing afresh gives them again
    config = Config(seed=3, max_examples=5)
    first = draw("positive", SGP, config)
    assert first
    first[0]["model"] = "changed by the first run"
    elsewhere = Config(seed=3, max_examples=5, base_url="http://elsewhere.example", report_dir="other")
    again = draw("positive", SGP, elsewhere)
    assert again[0]["model"] == config.model and again[1:] == first[1:]
    generation._DRAWN.clear()
    assert draw("positive", SGP, config) == again
    # another seed is another drawing
    assert draw("positive", SGP, Config(seed=4, max_examples=5)) != again


class _Stop(BaseException):
    """What the property tests raise (test_properties.AllowanceSpent) when a shrink may send no more."""


def test_a_search_stopped_midway_reports_the_smallest_failure_it_found() -> None:
    """The search for a minimal failing example ends when its allowance is spent (an exception Hypothesis
    does not take for a failure); the example database given to run_hypothesis keeps the smallest failure
    found by then, and a replay of what it saved (the same test function: the database is keyed on it)
    reports that one. The database changes no case drawn."""
    config = Config(seed=7, max_examples=50)
    strategy = st.lists(st.integers(0, 1000))
    tried: list[list[int]] = []
    failed: list[list[int]] = []
    state: dict[str, Any] = {"left": None, "replay": False}

    def test(case: list[int]) -> None:
        if state["replay"]:  # as Cases.send: what was not tried cannot fail
            tried.append(case)
            if case in failed:
                raise AssertionError(case)
            return
        if state["left"] == 0:
            raise _Stop
        if state["left"] is not None:
            state["left"] -= 1
        tried.append(case)
        if len(case) > 3 and sum(case) > 1500:
            failed.append(case)
            raise AssertionError(case)

    def search(database: Any, allowance: int | None) -> list[list[int]]:
        tried.clear()
        failed.clear()
        state["left"] = allowance
        with contextlib.suppress(AssertionError, _Stop):
            generation.run_hypothesis(config, strategy, test, database=database)
        return list(tried)

    whole = search(None, None)
    assert search(InMemoryExampleDatabase(), None) == whole  # the same cases, in order
    saved = InMemoryExampleDatabase()
    stopped = search(saved, len(whole) // 3)
    assert len(stopped) < len(whole) and len(failed) > 1  # stopped after shrinking a little, not at once
    tried.clear()
    state["replay"] = True
    with pytest.raises(AssertionError) as reported:
        try:
            generation.run_hypothesis(config, strategy, test, database=saved, saved_only=True)
        except unittest.SkipTest:  # Hypothesis's word for "nothing to replay"
            pytest.fail("nothing was saved")
    assert reported.value.args[0] == failed[-1]  # the last failure adopted is the smallest
    assert len(tried) <= len(failed) + 3  # a few replays, no search
