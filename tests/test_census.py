"""The field census: paths from the schemas, counts per parent occurrence, bounded values, merging across
processes, and its place in conformance.json and the HTML report."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from builders import chunk, completion, make_exchange, sse_body
from cli_runs import run_cli, run_in_process

from conformance.report import census
from conformance.report.census import CHUNK, COMPLETION, Census


def rows(c: Census, kind: str = COMPLETION) -> dict[str, dict[str, Any]]:
    return {row["path"]: row for row in c.report()["kinds"][kind]["fields"]}


def doc(**changes: Any) -> dict[str, Any]:
    base = {"id": "c1", "object": "chat.completion", "created": 1_700_000_000, "model": "m",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "hi"}}]}
    base.update(changes)
    return base


def test_every_schema_path_is_listed_even_when_never_sent() -> None:
    c = Census()
    c.add(doc(), COMPLETION)
    found = rows(c)
    for path in ("choices[].message.refusal", "choices[].message.audio.transcript", "usage.total_tokens",
                 "choices[].logprobs.content[].top_logprobs[].bytes", "service_tier"):
        assert path in found, path
    refusal = found["choices[].message.refusal"]
    assert (refusal["value"], refusal["null"], refusal["absent"], refusal["of"], refusal["seen"]) == (0, 0, 1, 1,
                                                                                                   "never")
    # a field inside an object that never appeared is not "absent": there was nothing to be absent from
    assert found["usage.total_tokens"]["of"] == 0 and found["usage.total_tokens"]["absent"] == 0
    assert found["usage.total_tokens"]["seen"] == "parent never seen"
    assert found["id"]["required"] and not found["service_tier"]["required"]


def test_value_null_and_absent_are_counted_per_parent_occurrence() -> None:
    c = Census()
    two = [{"index": i, "finish_reason": "stop", "message": {"role": "assistant", "content": None, "refusal": None}}
           for i in range(2)]
    c.add(doc(choices=two), COMPLETION)
    c.add(doc(), COMPLETION)
    c.add(doc(usage={"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}), COMPLETION)
    found = rows(c)
    refusal = found["choices[].message.refusal"]
    assert (refusal["value"], refusal["null"], refusal["absent"], refusal["of"]) == (0, 2, 2, 4)
    assert refusal["types"] == {"null": 2} and refusal["seen"] == "null or absent"
    content = found["choices[].message.content"]
    assert (content["value"], content["null"], content["of"]) == (2, 2, 4) and content["seen"] == "sometimes"
    assert content["types"] == {"null": 2, "string": 2}
    assert (found["usage"]["value"], found["usage"]["absent"]) == (1, 2)
    assert (found["usage.total_tokens"]["value"], found["usage.total_tokens"]["of"]) == (1, 1)
    assert found["id"]["seen"] == "always"
    assert c.report()["documents"] == {COMPLETION: 3, CHUNK: 0}
    assert census.summary_line(refusal) == "choices[].message.refusal: value 0, null 2, absent 2 of 4; types: null"


def test_enum_like_fields_keep_their_values_and_others_do_not() -> None:
    c = Census()
    for i, reason in enumerate(["stop", "length", "stop"]):
        c.add(doc(id=f"c{i}", service_tier="scale", choices=[
            {"index": 0, "finish_reason": reason, "message": {"role": "assistant", "content": f"text {i}"}}]),
            COMPLETION)
    found = rows(c)
    assert found["choices[].finish_reason"]["values"] == {"stop": 2, "length": 1}
    assert found["service_tier"]["values"] == {"scale": 3}
    assert found["choices[].message.role"]["values"] == {"assistant": 3}
    assert "values" not in found["id"] and "values" not in found["choices[].message.content"]


def test_distinct_values_are_bounded() -> None:
    c = Census()
    for i in range(census.MAX_VALUES + 5):
        c.add(doc(object=f"kind-{i}"), COMPLETION)
    row = rows(c)["object"]
    assert len(row["values"]) == census.MAX_VALUES and row["values_truncated"] is True


def test_keys_outside_the_schema_are_counted_and_bounded() -> None:
    c = Census()
    c.add(doc(usage={"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2,
                     "prompt_tokens_details": {"cached_tokens": 0, "image_tokens": 0}}, moderation={"flagged": False}),
          COMPLETION)
    found = rows(c)
    assert not found["usage.prompt_tokens_details.image_tokens"]["in_schema"]
    assert found["moderation.flagged"]["value"] == 1
    noisy = Census()
    noisy.add(doc(**{f"extra_{i}": i for i in range(census.MAX_EXTRA_PATHS + 20)}), COMPLETION)
    report = noisy.report()["kinds"][COMPLETION]
    assert sum(1 for r in report["fields"] if not r["in_schema"]) == census.MAX_EXTRA_PATHS
    assert report["extra_paths_dropped"] == 20


def test_exchanges_feed_completions_and_chunks_but_not_errors_or_done() -> None:
    c = Census()
    c.add_exchange(make_exchange(body=completion()))
    c.add_exchange(make_exchange(body={"detail": "no"}, status=401))
    piece = chunk({"content": "x"})
    c.add_exchange(make_exchange(body=sse_body([piece, "{not json", piece]), stream=True))
    assert c.report()["documents"] == {COMPLETION: 1, CHUNK: 2}
    assert rows(c, CHUNK)["choices[].delta.content"]["value"] == 2
    with pytest.raises(ValueError, match="unknown document kind"):
        c.add({}, "chat.completion.bogus")


def test_worker_counts_merge_to_the_counts_of_one_process() -> None:
    documents = [doc(), doc(service_tier="flex"), doc(choices=[]), doc(extra_key=1)]
    whole, left, right = Census(), Census(), Census()
    for i, d in enumerate(documents):
        whole.add(d, COMPLETION)
        (left if i % 2 else right).add(d, COMPLETION)
    merged = Census()
    # shipped between processes as JSON, as xdist's workeroutput carries it
    merged.merge(json.loads(json.dumps(left.dump())))
    merged.merge(json.loads(json.dumps(right.dump())))
    assert merged.report() == whole.report()


def test_the_html_table_escapes_and_lists_unseen_paths_on_one_line() -> None:
    c = Census()
    c.add(doc(model="<script>", service_tier="<b>"), COMPLETION)
    text = census.census_html(c.report())
    assert "<script>" not in text and "&lt;b&gt;" in text
    assert "<code>choices[].message.refusal" in text
    assert "Not judged (the object holding them never appeared): " in text and "usage.total_tokens" in text
    assert "No 200 response" in census.census_html(Census().report())


def test_the_report_does_not_change_the_documents() -> None:
    d = doc()
    before = copy.deepcopy(d)
    Census().add(d, COMPLETION)
    assert d == before


def test_runs_report_the_census_the_same_with_and_without_workers(tmp_path: Path) -> None:
    selection = ["-k", "RESP-001 or STRM-010"]
    single = run_in_process(["run", *selection], tmp_path / "single")
    parallel = run_cli(["run", "-n", "2", *selection], tmp_path / "parallel")
    assert single.code == parallel.code == 0, parallel.output[-2000:]
    section = parallel.doc["census"]
    # six non-streaming scenarios; the n=2 stream's chunks
    assert section["documents"][COMPLETION] == 6 and section["documents"][CHUNK] > 4
    assert section == single.doc["census"]
    found = {row["path"]: row for row in section["kinds"][COMPLETION]["fields"]}
    assert found["choices[].message.refusal"]["of"] == found["choices[].message"]["value"]
    page = (tmp_path / "parallel" / "conformance.html").read_text(encoding="utf-8")
    assert 'id="sgp-census"' in page and "choices[].message.refusal" in page
