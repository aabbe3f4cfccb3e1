"""Readers of recorded traffic: files in, `Record`s (an `Exchange` and what the recording knows) out.

Formats, told apart by content (the extension only sharpens the error message):

- a JSON document: one response body (a completion, a chunk or an error body), or an array of them;
- JSONL: one response body per line; OpenAI batch output lines ({"response": {"status_code", "body"}})
  are unwrapped;
- an SSE transcript: the text of a streamed response (`data: {...}` events);
- an HTTP transcript: a status line, headers and body, as `curl -i` prints them (the body JSON or SSE);
- HAR 1.2 (browsers, schemathesis `--report har`): request and response of each entry that posts to a
  chat-completions path; others are left out.

A bare document has no request and no headers. Its exchange gets the media type its content shows, so
the checks can run, and the record says `headers_known=False`: the header rules are not judged on it.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from conformance.checks.transport import is_event_stream
from conformance.contract.profiles import Profile
from conformance.inputs import InputError, read_capped
from conformance.secret_forms import KEY_HEADERS, bare
from conformance.transport.exchange import Exchange, RequestSpec, Response

JSON_TYPE = "application/json"
SSE_TYPE = "text/event-stream"
# credential values that exporters put in place of the real one (schemathesis, this suite's reports)
MASKED_VALUES = frozenset({"[Filtered]", "***", "[REDACTED]", ""})
# files larger than this are not read: recordings worth judging are far smaller; and all the files of one
# `validate` together are held to the same bound, so many large HARs stay within one memory bound
MAX_FILE_BYTES = 200_000_000
# what the tail of a path must be for a HAR entry to count as the operation
OPERATION_SUFFIX = "/chat/completions"


class RecordError(ValueError):
    """A file that cannot be judged: missing, unreadable or in no known format. One line, names the file."""


@dataclass
class Record:
    source: str
    format: str
    exchange: Exchange
    # the recording has the response's real headers / the request that was sent
    headers_known: bool = False
    request_known: bool = False
    # when the request was sent (Unix seconds), where the recording says
    time: float | None = None
    # the status is the server's, not assumed (a bare document is taken as a 200)
    status_known: bool = False
    # False where the exporter left the body out (browsers often do for event streams)
    body_known: bool = True

    @property
    def kind(self) -> str:
        """completion, stream, chunk, error (4xx) or server_error: what the checks judge this record as."""
        response = self.exchange.response
        if response is None:
            return "none"
        if response.status >= 500:
            return "server_error"
        if response.status >= 400:
            return "error"
        if is_event_stream(self.exchange):
            return "stream"
        if not 200 <= response.status < 300:
            return "other"
        body = self.exchange.json
        if isinstance(body, dict) and (body.get("object") == "chat.completion.chunk" or _has_deltas(body)):
            return "chunk"
        if not self.headers_known and isinstance(body, dict) and _looks_like_error(body):
            return "error"
        return "completion"


def _has_deltas(body: dict[str, Any]) -> bool:
    choices = body.get("choices")
    return isinstance(choices, list) and any(isinstance(c, dict) and "delta" in c for c in choices) \
        and not any(isinstance(c, dict) and "message" in c for c in choices)


def _looks_like_error(body: dict[str, Any]) -> bool:
    return "choices" not in body and ("detail" in body or "error" in body)


def _spec(source: str, stream: bool = False) -> RequestSpec:
    return RequestSpec(source, headers={}, body=None, params=None, stream=stream)


def _bare(source: str, fmt: str, body: bytes, media_type: str) -> Record:
    """A body with nothing around it: status 200 (an error body gets judged as such by its content)."""
    response = Response(200, [("content-type", media_type)], body)
    exchange = Exchange(source, source, _spec(source, media_type == SSE_TYPE), response)
    return Record(source, fmt, exchange)


def _decode(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RecordError(f"{path}: not UTF-8 text (byte {exc.start}): not a recording this command reads") \
            from None


def _read(path: Path, cap: int) -> bytes:
    if path.is_dir():
        raise RecordError(f"{path}: is a directory: give the recorded files themselves")
    try:
        # counted in bytes read, not by stat(): /dev/zero says 0 bytes, a FIFO would block
        return read_capped(path, cap, "recording", noun="recorded file")
    except InputError as exc:
        raise RecordError(str(exc)) from None


def read_file(path: Path, profile: Profile, cap: int = MAX_FILE_BYTES) -> list[Record]:
    """The records of one file of at most `cap` bytes; RecordError when it is missing, unreadable, not a
    regular file, larger than `cap`, nested too deep, or of no known format."""
    return read_bytes(str(path), _read(path, cap), profile)


def read_files(paths: Iterable[Path], profile: Profile, cap: int = MAX_FILE_BYTES) -> list[Record]:
    """The records of several files whose sizes together, counted in bytes read, are at most `cap`: each
    file is read with what the others left of it, and its text is let go once parsed."""
    records: list[Record] = []
    left = cap
    for path in paths:
        data = _read(path, left)
        left -= len(data)
        records += read_bytes(str(path), data, profile)
        del data
    return records


def read_bytes(name: str, data: bytes, profile: Profile) -> list[Record]:
    path = Path(name)
    text = _decode(path, data)
    stripped = text.strip()
    if not stripped:
        raise RecordError(f"{name}: is empty")
    if stripped.startswith(("{", "[")):
        try:
            whole = json.loads(stripped)
        except RecursionError:
            raise RecordError(f"{name}: JSON nested deeper than this command reads (RFC 8259 §9 lets a parser "
                              "limit the depth): not a recording") from None
        except ValueError:
            whole = None
            lines = [line for line in stripped.splitlines() if line.strip()]
            # each line parsed once (a JSONL of millions of lines is read in seconds, not tens of seconds)
            documents = [_parsed(line) for line in lines] if len(lines) > 1 else []
            if any(_is_record(document) for document in documents):
                return list(_jsonl(name, lines, documents))
            if path.suffix.lower() in (".json", ".har"):
                # one document that is not JSON: judged (and failed) as the response it claims to be
                return [_bare(name, "json", stripped.encode("utf-8"), JSON_TYPE)]
            if documents and all(document is not _UNPARSABLE for document in documents):
                # valid JSONL, but no line is a record: say so, not that it does not parse
                raise RecordError(f"{name}: JSONL of {len(lines):,} lines, none of them a record (a JSON object "
                                  "with at least one member, e.g. a response body or a batch output line): "
                                  "nothing to judge") from None
            raise RecordError(f"{name}: neither JSON nor JSONL (it does not parse)") from None
        if isinstance(whole, dict) and isinstance(whole.get("log"), dict):
            return list(_har(name, whole["log"], profile))
        if isinstance(whole, list) and whole and all(isinstance(d, dict) for d in whole):
            return [_bare(f"{name}[{i}]", "json", json.dumps(d).encode("utf-8"), JSON_TYPE)
                    for i, d in enumerate(whole)]
        return [_from_document(name, "json", stripped.encode("utf-8"), whole)]
    if stripped.startswith("HTTP/"):
        return [_http_transcript(name, text)]
    if any(line.startswith(("data:", "event:")) for line in stripped.splitlines()[:50]):
        return [_bare(name, "sse", text.encode("utf-8"), SSE_TYPE)]
    hint = {".har": "HAR (a JSON object with a log)", ".jsonl": "JSONL", ".ndjson": "JSONL",
            ".json": "JSON"}.get(path.suffix.lower(), "JSON, JSONL, an SSE or HTTP transcript, or HAR")
    raise RecordError(f"{name}: not recognised as {hint}")


# what `_parsed` gives for a line that is not JSON (None is JSON's null)
_UNPARSABLE = object()


def _parsed(line: str) -> Any:
    """A line's JSON document, or `_UNPARSABLE`."""
    try:
        return json.loads(line)
    except (ValueError, RecursionError):
        return _UNPARSABLE


def _is_record(document: Any) -> bool:
    """Whether a line's document is a JSONL record: a JSON object with a member. A pretty-printed document cut
    short has lines that parse as well (`105`, `true`, `"hi"`), but they are its innards, not records."""
    return isinstance(document, dict) and bool(document)


def _from_document(source: str, fmt: str, raw: bytes, document: Any) -> Record:
    """A parsed document: OpenAI batch output lines are unwrapped into their status and body."""
    response = document.get("response") if isinstance(document, dict) else None
    if isinstance(response, dict) and "status_code" in response and "body" in response:
        status = response.get("status_code")
        headers = [("content-type", JSON_TYPE)]
        if isinstance(response.get("request_id"), str):
            headers.append(("x-request-id", response["request_id"]))
        body = json.dumps(response["body"]).encode("utf-8")
        exchange = Exchange(source, source, _spec(source),
                            Response(status if isinstance(status, int) else 0, headers, body))
        return Record(source, fmt, exchange, status_known=True)
    return _bare(source, fmt, raw, JSON_TYPE)


def _jsonl(name: str, lines: list[str], documents: list[Any]) -> Iterator[Record]:
    """The records of a JSONL file: its lines and their documents (`_parsed`)."""
    records = []
    for number, (line, document) in enumerate(zip(lines, documents, strict=True), 1):
        raw = line.strip().encode("utf-8")
        if document is _UNPARSABLE:
            # a broken line is a response that is not JSON: the checks say so
            records.append(_bare(f"{name}:{number}", "jsonl", raw, JSON_TYPE))
        else:
            records.append(_from_document(f"{name}:{number}", "jsonl", raw, document))
    yield from records


def _split_head(text: str) -> tuple[str, str]:
    """(head, body) at the first blank line, whichever line ending the transcript uses."""
    ends = [(i, len(sep)) for sep in ("\r\n\r\n", "\n\n") if (i := text.find(sep)) >= 0]
    if not ends:
        return text, ""
    i, n = min(ends)
    return text[:i], text[i + n:]


def _http_transcript(name: str, text: str) -> Record:
    """`curl -i` output: a status line, headers, a blank line, the body (1xx and proxy heads skipped)."""
    head, body = _split_head(text)
    lines = head.splitlines()
    while True:
        parts = lines[0].split(None, 2) if lines else []
        if len(parts) < 2 or not parts[1].isdigit():
            raise RecordError(f"{name}: looks like an HTTP transcript but its status line is {lines[:1]}")
        status = int(parts[1])
        interim = status < 200 or "connection established" in lines[0].lower()
        if not (interim and body.startswith("HTTP/")):
            break
        head, body = _split_head(body)
        lines = head.splitlines()
    headers = []
    for line in lines[1:]:
        key, colon, value = line.partition(":")
        if colon:
            headers.append((key.strip(), value.strip()))
    response = Response(status, headers, body.encode("utf-8"))
    exchange = Exchange(name, name, _spec(name, response.media_type == SSE_TYPE), response)
    return Record(name, "http", exchange, headers_known=True, status_known=True)


def _iso_time(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _pairs(items: Any) -> list[tuple[str, str]]:
    out = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            out.append((item["name"], str(item.get("value", ""))))
    return out


def is_operation(method: str, url: str, profile: Profile) -> bool:
    path = urlsplit(url).path.rstrip("/")
    return method.upper() == "POST" and (path.endswith(profile.path) or path.endswith(OPERATION_SUFFIX))


def _har(name: str, log: dict[str, Any], profile: Profile) -> Iterator[Record]:
    entries = log.get("entries")
    if not isinstance(entries, list):
        raise RecordError(f"{name}: a HAR file without log.entries")
    found = 0
    for number, entry in enumerate(entries):
        if not isinstance(entry, dict):
            continue
        request, response = entry.get("request") or {}, entry.get("response") or {}
        if not isinstance(request, dict) or not isinstance(response, dict):
            # HAR 1.2: request and response are objects; anything else is no exchange to judge
            raise RecordError(f"{name}#{number}: a HAR entry whose request or response is not an object "
                              f"({type(request).__name__}, {type(response).__name__}): not a HAR this command reads")
        method, url = str(request.get("method", "")), str(request.get("url", ""))
        try:
            operation = is_operation(method, url, profile)
        except ValueError as exc:  # an unclosed IPv6 bracket, a port that is no number
            shown = url if len(url) <= 80 else url[:80] + "..."
            raise RecordError(f"{name}#{number}: request.url {shown!r} is not a valid URL ({exc}): "
                              "not a HAR this command reads") from None
        if not operation:
            continue
        found += 1
        source = f"{name}#{number}"
        post = request.get("postData") if isinstance(request.get("postData"), dict) else {}
        body = post.get("text").encode("utf-8") if isinstance(post.get("text"), str) else None
        params: Any = None
        if body:
            try:
                params = json.loads(body)
            except (ValueError, RecursionError):
                params = None
        stream = isinstance(params, dict) and params.get("stream") is True
        headers = {k: v for k, v in _pairs(request.get("headers"))}
        spec = RequestSpec(source, method.upper(), headers, body, params if isinstance(params, dict) else None,
                           stream)
        status = response.get("status")
        if not isinstance(status, int) or status <= 0:
            # a browser records 0 for a request that got no answer
            yield Record(source, "har", Exchange(source, url, spec, None, error="no response recorded"),
                         headers_known=False, request_known=True, time=_iso_time(entry.get("startedDateTime")))
            continue
        content = response.get("content") if isinstance(response.get("content"), dict) else {}
        text = content.get("text")
        raw = b""
        if isinstance(text, str):
            raw = text.encode("utf-8")
            if content.get("encoding") == "base64":
                try:
                    raw = base64.b64decode(text, validate=True)
                except binascii.Error:
                    raise RecordError(f"{source}: response content says base64 but is not") from None
        comment = content.get("comment")
        cut = comment if isinstance(comment, str) and "truncated" in comment.lower() else None
        # HAR 1.2's time is a number of milliseconds; any other value is read as unknown (0)
        took = entry.get("time")
        elapsed = float(took) if isinstance(took, int | float) and not isinstance(took, bool) else 0.0
        recorded = Response(status, _pairs(response.get("headers")), raw,
                            elapsed if math.isfinite(elapsed) else 0.0, truncated=cut)
        yield Record(source, "har", Exchange(source, url, spec, recorded, error=cut), headers_known=True,
                     request_known=True, time=_iso_time(entry.get("startedDateTime")), status_known=True,
                     body_known=isinstance(text, str))
    if not found:
        raise RecordError(f"{name}: none of its {len(entries)} HAR entries posts to a chat-completions path "
                          f"(…{profile.path})")


def recorded_keys(records: Iterable[Record]) -> list[str]:
    """The credentials the recorded requests carried (not the exporters' masks): secrets of the report."""
    keys: list[str] = []
    for record in records:
        for name, value in record.exchange.request.headers.items():
            if name.lower() not in KEY_HEADERS:
                continue
            key = bare(value)
            if key not in MASKED_VALUES and key not in keys:
                keys.append(key)
    return keys


# -- writing HAR: the inverse of the reader, for recording fixtures and exporting a run's traffic --------


def _har_time(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def har_entry(exchange: Exchange, started: float) -> dict[str, Any]:
    """One HAR 1.2 entry of an exchange (bodies as UTF-8 text, or base64 where they are not)."""
    spec = exchange.request
    request: dict[str, Any] = {
        "method": spec.method, "url": exchange.url, "httpVersion": "HTTP/1.1",
        "headers": [{"name": k, "value": v} for k, v in spec.headers.items()],
        "queryString": [], "cookies": [], "headersSize": -1, "bodySize": len(spec.body or b""),
    }
    if spec.body is not None:
        media = next((v for k, v in spec.headers.items() if k.lower() == "content-type"), "")
        request["postData"] = {"mimeType": media, "text": spec.body.decode("utf-8", errors="replace")}
    response: dict[str, Any] = {"status": 0, "statusText": "", "httpVersion": "", "headers": [], "cookies": [],
                                "content": {"size": 0, "mimeType": ""}, "redirectURL": "", "headersSize": -1,
                                "bodySize": -1}
    elapsed = 0.0
    if exchange.response is not None:
        recorded = exchange.response
        elapsed = recorded.elapsed_ms
        try:
            content: dict[str, Any] = {"text": recorded.body.decode("utf-8")}
        except UnicodeDecodeError:
            content = {"text": base64.b64encode(recorded.body).decode("ascii"), "encoding": "base64"}
        content.update(size=len(recorded.body), mimeType=recorded.header("content-type") or "")
        if recorded.truncated:
            content["comment"] = f"Body truncated: {recorded.truncated}"
        response.update(status=recorded.status, httpVersion="HTTP/1.1", content=content,
                        headers=[{"name": k, "value": v} for k, v in recorded.headers], bodySize=len(recorded.body))
    return {"startedDateTime": _har_time(started), "time": round(elapsed, 2), "request": request,
            "response": response, "cache": {}, "timings": {"send": 0, "wait": round(elapsed, 2), "receive": 0}}


def har_document(entries: Iterable[tuple[Exchange, float]], creator: str = "sgp-conformance") -> dict[str, Any]:
    """A HAR 1.2 document of (exchange, the Unix time it was sent) pairs."""
    from conformance import __version__

    return {"log": {"version": "1.2", "creator": {"name": creator, "version": __version__},
                    "entries": [har_entry(exchange, started) for exchange, started in entries]}}
