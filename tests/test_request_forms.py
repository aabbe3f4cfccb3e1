"""The documented request forms (FORM-001, conformance.suite.request_forms): each form is a valid request under
the contract's own schema, every form is sent at standard depth in at most 15 requests, and `--dry-run`
lists them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cli_runs import run_cli, run_in_process

from conformance.config import Config
from conformance.contract import schema_store
from conformance.contract.profiles import get_profile
from conformance.suite import request_forms
from conformance.suite.scenarios import BUILDERS, Context, build

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


def test_the_issue_s_forms_are_all_there_and_each_carried_by_a_request() -> None:
    assert {form.name for form in request_forms.FORMS} == NAMED
    carried = [form for forms in request_forms.CARRIED.values() for form in forms]
    assert sorted(carried) == sorted(NAMED)  # each exactly once
    assert {f.feature for f in request_forms.FORMS} - {None} <= FEATURES
    for scenario, forms in request_forms.CARRIED.items():
        for exclusive in request_forms.EXCLUSIVE:
            assert len(exclusive & set(forms)) <= 1, (scenario, exclusive & set(forms))


def _carries(form: str, body: dict[str, Any]) -> bool:
    """Whether a request body shows `form` (read from the body, not from the patches that made it)."""
    roles = [m.get("role") for m in body["messages"]]
    contents = [m.get("content") for m in body["messages"] if m.get("role") == "user"]
    fmt = (body.get("response_format") or {}).get("type")
    choice = body.get("tool_choice")
    return {
        "role-system": "system" in roles, "role-developer": "developer" in roles, "role-user": "user" in roles,
        "role-assistant-tool-calls": any(m.get("role") == "assistant" and m.get("tool_calls")
                                         for m in body["messages"]),
        "role-tool": "tool" in roles,
        "content-string": any(isinstance(c, str) for c in contents),
        "content-parts": any(isinstance(c, list) for c in contents),
        "max_tokens": "max_tokens" in body and "max_completion_tokens" not in body,
        "max_completion_tokens": "max_completion_tokens" in body and "max_tokens" not in body,
        "stop-string": isinstance(body.get("stop"), str), "stop-list": isinstance(body.get("stop"), list),
        "logit_bias": "logit_bias" in body, "metadata": "metadata" in body, "seed": "seed" in body,
        "parallel_tool_calls": "parallel_tool_calls" in body,
        "stream_options": body.get("stream") is True and "stream_options" in body,
        "response_format-text": fmt == "text", "response_format-json_object": fmt == "json_object",
        "response_format-json_schema": fmt == "json_schema",
        "tool_choice-none": choice == "none", "tool_choice-auto": choice == "auto",
        "tool_choice-required": choice == "required", "tool_choice-function": isinstance(choice, dict),
    }[form]


@pytest.mark.parametrize("profile", ["sgp", "openai"])
def test_every_request_is_valid_and_carries_its_forms(profile: str) -> None:
    ctx = context(profile)
    singles = {f"form_{f.name}": (f.name,) for f in request_forms.FORMS}
    for name, forms in {**request_forms.CARRIED, **singles}.items():
        spec = build(name, ctx)
        errors = [e.message for e in schema_store.validator("chat-completion-request").iter_errors(spec.params)]
        assert errors == [], (name, errors)
        assert spec.stream == (spec.params.get("stream") is True)
        missing = [form for form in forms if not _carries(form, spec.params)]
        assert missing == [], (name, missing)


def test_forms_of_a_feature_declared_absent_are_left_out() -> None:
    ctx = context("openai")
    object.__setattr__(ctx.config, "without", frozenset({"tools", "json_schema"}))
    body = build("forms_a", ctx).params
    roles = [m["role"] for m in body["messages"]]
    assert "tools" not in body and "response_format" not in body and "tool" not in roles
    # the forms of no feature stay
    assert {"system", "developer", "user"} <= set(roles) and body["logit_bias"] and body["stop"]


def test_the_forms_cost_at_most_15_requests_at_standard_depth_and_dry_run_shows_them(tmp_path: Path) -> None:
    assert len(request_forms.CARRIED) <= 15 and all(s in BUILDERS for s in request_forms.CARRIED)
    out = run_cli(["run", "--profile", "sgp", "--base-url", "http://127.0.0.1:9/v1", "--dry-run", "-k", "FORM"],
                  env={"SGP_API_KEY": "k"})
    row = next(line for line in out.stdout.splitlines() if line.strip().startswith("FORM-001"))
    assert int(row.split()[1]) <= 15, row
    assert all(s in row for s in request_forms.OWN), row


def test_a_server_without_streaming_is_held_to_the_other_forms_alone(tmp_path: Path) -> None:
    out = run_in_process(["run", "--profile", "openai", "--without", "streaming,include_usage", "-k",
                          "FORM-001 or STRM-020"], tmp_path / "reports")
    statuses = {r["id"]: r["status"] for r in out.doc["results"] if r["id"] in ("FORM-001", "STRM-020")}
    assert statuses == {"FORM-001": "pass", "STRM-020": "not run"}, out.output[-2000:]


@pytest.mark.parametrize("profile", ["sgp", "openai"])
def test_the_forms_a_request_carries_are_read_back_from_it(profile: str) -> None:
    """forms_in (which tells a generated case refused for a documented form, FORM-001's, from PROP-001's
    own finding) reads each form back from the request FORM-001 sends for it alone."""
    ctx = context(profile)
    assert request_forms.forms_in(build("basic", ctx).params) == set()
    for form in request_forms.FORMS:
        if form.name not in request_forms.MINIMAL:
            assert form.name in request_forms.forms_in(build(f"form_{form.name}", ctx).params), form.name
    assert request_forms.forms_in(["not", "an", "object"]) == set()
