"""The documented request forms (FORM-001, conformance.suite.request_forms): each form is a valid request under
the contract's own schema, every form is sent at standard depth in at most 15 requests, and `--dry-run`
lists them."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_runs import run_cli

from conformance.config import Config
from conformance.contract import schema_store
from conformance.contract.profiles import get_profile
from conformance.suite import request_forms
from conformance.suite.scenarios import BUILDERS, WEATHER_TOOL, Context, build

# the optional features of issue 19's claims vocabulary (conformance.contract.claims.FEATURES)
FEATURES = {"streaming", "tools", "tool_choice", "logprobs", "n", "json_object", "json_schema", "stop",
            "include_usage"}
NAMED = {"role-system", "role-developer", "role-user", "role-assistant-tool-calls", "role-tool", "content-string",
         "content-parts", "max_tokens", "max_completion_tokens", "stop-string", "stop-list", "logit_bias", "metadata",
         "seed", "parallel_tool_calls", "stream_options", "response_format-text", "response_format-json_object",
         "response_format-json_schema", "tool_choice-none", "tool_choice-auto", "tool_choice-required",
         "tool_choice-function"}


def context(profile: str) -> Context:
    return Context(Config(base_url="http://127.0.0.1:9/v1", api_key="k", profile=profile, model="m"),
                   get_profile(profile))


def test_the_issue_s_forms_are_all_there_and_each_in_a_group() -> None:
    assert {form.name for form in request_forms.FORMS} == NAMED
    grouped = {form for forms in request_forms.GROUPS.values() for form in forms}
    assert grouped == NAMED
    for group, forms in request_forms.GROUPS.items():
        features = {request_forms.BY_NAME[f].feature for f in forms} - {None}
        # one feature a group at most: a server that declares it absent skips the group and nothing else
        assert len(features) <= 1 and features <= FEATURES, group


@pytest.mark.parametrize("profile", ["sgp", "openai"])
def test_every_form_and_group_is_a_valid_request(profile: str) -> None:
    ctx = context(profile)
    names = [*(s for s in request_forms.SCENARIO_OF.values()), *(f"form_{f.name}" for f in request_forms.FORMS)]
    for name in names:
        spec = build(name, ctx)
        errors = [e.message for e in schema_store.validator("chat-completion-request").iter_errors(spec.params)]
        assert errors == [], (name, errors)
        assert spec.stream == (spec.params.get("stream") is True)


def test_each_form_changes_the_request_it_names() -> None:
    base = context("openai").body()
    body = request_forms.body_for(("role-developer", "content-parts", "max_completion_tokens"), base, WEATHER_TOOL)
    assert [m["role"] for m in body["messages"]] == ["developer", "user"]
    assert body["messages"][1]["content"] == [{"type": "text", "text": base["messages"][0]["content"]}]
    assert "max_tokens" not in body and body["max_completion_tokens"] == base["max_tokens"]
    # the base is not touched
    assert base["messages"][0]["content"] == context("openai").body()["messages"][0]["content"]
    tools = request_forms.body_for(request_forms.GROUPS["tools"], base, WEATHER_TOOL)
    assert [m["role"] for m in tools["messages"]] == ["user", "assistant", "tool"]
    assert tools["tool_choice"] == "auto" and tools["parallel_tool_calls"] is False


def test_the_forms_cost_at_most_15_requests_at_standard_depth_and_dry_run_shows_them(tmp_path: Path) -> None:
    new = [s for s in request_forms.SCENARIO_OF.values() if s != "basic"]
    assert len(new) + 1 <= 15 and all(s in BUILDERS for s in new)
    out = run_cli(["run", "--profile", "sgp", "--base-url", "http://127.0.0.1:9/v1", "--dry-run", "-k", "FORM"],
                  env={"SGP_API_KEY": "k"})
    row = next(line for line in out.stdout.splitlines() if line.strip().startswith("FORM-001"))
    count = int(row.split()[1])
    assert count == len(new) <= 15, row
    assert all(s in row for s in new)
