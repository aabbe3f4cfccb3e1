"""The client matrix (`run --clients`, CLIENT-005): every official client of the profile that is installed,
by version, against four capabilities, with the exchange behind each broken cell.

Clients: `scale-gp` and `scale-gp-beta` (Python) under sgp; `openai` for Python and for TypeScript (the npm
package, through node; see node_openai) under openai. Capabilities:

- parse: a completion is returned and reads as the body the server sent (sdk_clients.differences);
- stream: a stream is consumed to its end, one parsed chunk per chunk sent;
- tool calls: a forced tool call comes back whole: the openai clients assemble it from a stream with their
  own accumulators (Python's ChatCompletionStreamState, node's ChatCompletionStream) and it must equal the
  suite's assembly; the scale-gp clients have no accumulator and parse it from a completion;
- typed error: a request with a wrong key raises the client's typed API error carrying the status.

Every request goes through a `RecordingTransport` (sdk_clients), so it counts against the run's budget
and is kept as evidence. scale-gp-beta calls /v5/chat/completions, which has the same models as the
profile's operation (CONTRACT.md intro): its requests are sent to the operation under test. node's requests
reach the target through a local forwarder on 127.0.0.1 that does the same.
"""

from __future__ import annotations

import importlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import metadata
from typing import Any

import httpx

from conformance.audit import node_openai
from conformance.audit.sdk_clients import PROMPT, RecordingTransport, _as_dict, describe_exception, differences
from conformance.checks.streaming import assemble, chunks
from conformance.config import Config
from conformance.config.network import request_headers
from conformance.contract.profiles import Profile
from conformance.transport.exchange import Exchange
from conformance.transport.network import http_transport

CAPABILITIES = ("parse", "stream", "tool calls", "typed error")
PASS, FAIL, NOT_RUN, NOT_JUDGED = "pass", "fail", "not run", "not judged"
TOOL_PROMPT = "What is the weather in Paris?"
TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Get the current weather in a city.",
                                         "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                        "required": ["city"]}}}
WRONG_KEY = "sgp-conformance-client-matrix-wrong-key"
THROTTLED = "the target kept answering 429 Too Many Requests after retries"


@dataclass(frozen=True)
class ClientKind:
    """One official client: its name in the matrix, language, package, install line and profile."""

    name: str
    language: str
    profile: str
    # what `install_line()` says for a Python client (the TypeScript client's names the run's npm folder)
    install: str
    distribution: str | None = None
    module: str | None = None

    def install_line(self) -> str:
        """How to install the client: the TypeScript one's line names the folder of this run's environment."""
        return node_openai.install_line() if self.language == "TypeScript" else self.install

    def version(self) -> str | None:
        """The installed version, or None when the client cannot be used here."""
        if self.language == "TypeScript":
            return node_openai.version()
        try:
            importlib.import_module(self.module or "")
            return metadata.version(self.distribution or "")
        except (ImportError, metadata.PackageNotFoundError):
            return None


CLIENTS: tuple[ClientKind, ...] = (
    ClientKind("scale-gp", "Python", "sgp", "pip install scale-gp", "scale-gp", "scale_gp"),
    ClientKind("scale-gp-beta", "Python", "sgp", "pip install scale-gp-beta", "scale-gp-beta", "scale_gp_beta"),
    ClientKind("openai", "Python", "openai", "pip install openai", "openai", "openai"),
    ClientKind("openai (TypeScript)", "TypeScript", "openai", "npm install openai"),
)


@dataclass
class Cell:
    """One client x capability: its status, a line saying why, and the exchanges behind it."""

    client: str
    language: str
    version: str
    capability: str
    status: str
    detail: str = ""
    exchanges: list[Exchange] = field(default_factory=list)


def clients_for(profile: Profile | str) -> list[ClientKind]:
    name = profile if isinstance(profile, str) else profile.name
    return [c for c in CLIENTS if c.profile == name]


class _ToOperation(httpx.BaseTransport):
    """Sends every request to the operation under test, whatever path the client chose."""

    def __init__(self, config: Config, profile: Profile) -> None:
        self.url = profile.url(config.base_url or "")
        self.inner = http_transport(config, config.base_url)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.url = httpx.URL(self.url)
        request.headers["host"] = request.url.netloc.decode("ascii")
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


class _Recorder:
    """The recording transport of one client, with the scenario each request is recorded under."""

    def __init__(self, config: Config, profile: Profile, slug: str, before_send: Callable[[], None],
                 record: Callable[[Exchange], None]) -> None:
        self.slug = slug
        self.capability = CAPABILITIES[0]
        self.transport = RecordingTransport(config, self.scenario, before_send, record, _ToOperation(config, profile))

    def scenario(self) -> str:
        return f"client_{self.slug}_{self.capability.replace(' ', '_')}"

    def since(self, start: int) -> list[Exchange]:
        return self.transport.exchanges[start:]


def _dump(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    return dump(mode="json") if callable(dump) else value


def _body(exchange: Exchange | None) -> Any:
    if exchange is None or exchange.response is None:
        return None
    try:
        return json.loads(exchange.response.body)
    except ValueError:
        return None


def _calls(doc: Any) -> list[tuple[Any, Any, Any]]:
    """(id, name, arguments) of the first choice's tool calls of a completion as a dict."""
    try:
        found = doc["choices"][0]["message"].get("tool_calls") or []
    except (KeyError, IndexError, TypeError, AttributeError):
        return []
    return [(c.get("id"), (c.get("function") or {}).get("name"), (c.get("function") or {}).get("arguments"))
            for c in found if isinstance(c, dict)]


def judge_parse(built: Any, exchange: Exchange | None) -> tuple[str, str]:
    sent = _body(exchange)
    if sent is None:
        return NOT_JUDGED, "no JSON body came back"
    diffs = list(differences(_as_dict(built), sent))
    if diffs:
        return FAIL, "the client reads the body otherwise: " + "; ".join(f"{p}: {d}" for p, d in diffs[:3])
    return PASS, ""


def judge_stream(count: int, exchange: Exchange | None) -> tuple[str, str]:
    if exchange is None:
        return NOT_JUDGED, "no stream came back"
    sent = len(chunks(exchange))
    if count != sent:
        return FAIL, f"the client gave {count} chunk(s) of the {sent} sent"
    return PASS, ""


def judge_tools(built: Any, exchange: Exchange | None, streamed: bool) -> tuple[str, str]:
    if exchange is None:
        return NOT_JUDGED, "no answer came back"
    ours = assemble(exchange) if streamed else _body(exchange)
    expected, got = _calls(ours), _calls(_dump(built))
    if not expected:
        return NOT_JUDGED, "the answer carried no tool call"
    if got != expected:
        return FAIL, f"the client assembled the tool call(s) {got}, the suite {expected}"
    return PASS, ""


def _carried_calls(exchange: Exchange | None, streamed: bool) -> bool:
    """Whether the answer, as the suite reads it, holds a tool call (True when there is no answer to read:
    the client's failure then stands)."""
    if exchange is None or exchange.response is None:
        return True
    return bool(_calls(assemble(exchange) if streamed else _body(exchange)))


def _no_call(failure: str) -> tuple[str, str]:
    """The tool-calls cell of a client that failed on an answer with no tool call: a server that answers a
    forced call otherwise fails TOOL-001, and the client's complaint about that answer (openai's
    LengthFinishReasonError on a text cut at max_tokens, say) is the same fault, not a second one."""
    return NOT_JUDGED, f"the answer carried no tool call (TOOL-001 reports it); the client: {failure}"


def judge_error(typed: bool, status: Any, detail: str, exchange: Exchange | None) -> tuple[str, str]:
    if exchange is None or exchange.response is None:
        return NOT_JUDGED, "no answer came back"
    code = exchange.response.status
    if 200 <= code < 300:
        return NOT_JUDGED, f"the target served a wrong key with {code} (AUTH-003 reports it)"
    if not typed or status != code:
        return FAIL, f"expected the client's typed API error with status {code}, got {detail or 'none'}"
    return PASS, ""


def sends_a_wrong_key(scenario: str) -> bool:
    """Whether `scenario` is a typed-error request of the matrix: a wrong key, so its refusal is an auth
    refusal (AUTH-006 judges the body of those)."""
    return scenario.startswith("client_") and scenario.endswith("_" + CAPABILITIES[3].replace(" ", "_"))


def _python_client(kind: ClientKind, config: Config, http: httpx.Client, key: str) -> Any:
    timeout = httpx.Timeout(config.timeout, connect=min(config.timeout, 10.0))
    # the run's extra headers (--header, a gateway's routing) as the client's default headers, as its users
    # configure it; sdk_clients.make_sdk_client does the same
    headers = request_headers(config) or None
    if kind.module == "openai":
        from openai import OpenAI

        return OpenAI(api_key=key, base_url=config.base_url, max_retries=config.retries, timeout=timeout,
                      http_client=http, default_headers=headers)
    module = importlib.import_module(kind.module or "")
    # the clients' own retries (429 and 5xx, honouring Retry-After) go through the recorder: counted, kept
    return module.SGPClient(api_key=key, account_id=config.account_id, base_url=config.base_url,
                            max_retries=config.retries, timeout=timeout, http_client=http, default_headers=headers)


def _create(kind: ClientKind, client: Any) -> Callable[..., Any]:
    completions = client.beta.chat.completions if kind.module == "scale_gp" else client.chat.completions
    create: Callable[..., Any] = completions.create
    return create


def _python_cells(kind: ClientKind, version: str, config: Config, profile: Profile,
                  before_send: Callable[[], None], record: Callable[[Exchange], None]) -> list[Cell]:
    recorder = _Recorder(config, profile, kind.name.replace(" ", "_"), before_send, record)
    http = httpx.Client(transport=recorder.transport, follow_redirects=False, trust_env=False)
    base = {"model": config.model, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": config.max_tokens}
    cells: list[Cell] = []
    try:
        client = _python_client(kind, config, http, config.api_key or "")
        for capability in CAPABILITIES:
            recorder.capability = capability
            streamed = kind.module == "openai"  # the openai SDK's tool calls are read through its stream helper
            start = len(recorder.transport.exchanges)
            built: Any = None
            error: BaseException | None = None
            try:
                if capability == "parse":
                    built = _create(kind, client)(**base)
                elif capability == "stream":
                    built = list(_create(kind, client)(**base, stream=True, stream_options={"include_usage": True}))
                elif capability == "tool calls":
                    tool_args = {**base, "messages": [{"role": "user", "content": TOOL_PROMPT}], "tools": [TOOL],
                                 "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
                                 "max_tokens": max(config.max_tokens, 32)}
                    if kind.module == "openai":
                        # the SDK's own stream helper: ChatCompletionStreamState assembles the call
                        with client.chat.completions.stream(**tool_args) as stream:
                            built = stream.get_final_completion()
                    else:
                        built = _create(kind, client)(**tool_args)
                else:
                    wrong = _python_client(kind, config, http, WRONG_KEY)
                    built = _create(kind, wrong)(**base)
            except Exception as exc:  # the client's own failure is the cell's outcome, whatever its type
                from conformance.transport.client import BudgetExhausted

                if isinstance(exc, BudgetExhausted) or isinstance(exc.__cause__, BudgetExhausted):
                    cells.append(Cell(kind.name, kind.language, version, capability, NOT_RUN, str(exc)))
                    continue
                error = exc
            exchanges = recorder.since(start)
            last = exchanges[-1] if exchanges else None
            if last is not None and last.status == 429:
                cells.append(Cell(kind.name, kind.language, version, capability, NOT_RUN, THROTTLED, exchanges))
                continue
            if capability == "typed error":
                status = getattr(error, "status_code", None)
                typed = error is not None and type(error).__name__.endswith("Error") and status is not None
                verdict = judge_error(typed, status, describe_exception(error) if error else "", last)
            elif error is not None and capability == "tool calls" and not _carried_calls(last, streamed):
                verdict = _no_call(describe_exception(error))
            elif error is not None:
                verdict = (FAIL, describe_exception(error))
            elif capability == "parse":
                verdict = judge_parse(built, last)
            elif capability == "stream":
                verdict = judge_stream(len(built), last)
            else:
                verdict = judge_tools(built, last, streamed=streamed)
            cells.append(Cell(kind.name, kind.language, version, capability, *verdict, exchanges=exchanges))
    finally:
        http.close()
    return cells


def capability_of(body: bytes, authorization: str) -> str:
    """Which capability a request of node's script serves, read from the request (its retries included)."""
    if WRONG_KEY in authorization:
        return "typed error"
    try:
        params = json.loads(body)
    except ValueError:
        params = {}
    if isinstance(params, dict) and params.get("tools"):
        return "tool calls"
    return "stream" if isinstance(params, dict) and params.get("stream") is True else "parse"


class _Forwarder:
    """A loopback HTTP server that hands every POST to the recorder (node's requests reach the target so)."""

    def __init__(self, recorder: _Recorder) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                skip = {"host", "content-length", "connection", "accept-encoding"}
                headers = [(k, v) for k, v in self.headers.items() if k.lower() not in skip]
                recorder.capability = capability_of(body, self.headers.get("authorization") or "")
                request = httpx.Request("POST", "http://forwarded.invalid/", headers=headers, content=body)
                try:
                    answer = recorder.transport.handle_request(request)
                    content = answer.content
                    self.send_response(answer.status_code)
                    for name, value in answer.headers.multi_items():
                        if name.lower() not in ("content-length", "transfer-encoding", "content-encoding",
                                                "connection"):
                            self.send_header(name, value)
                except Exception as exc:  # the target failed or the budget is spent: node sees a 502
                    content = json.dumps({"error": {"message": str(exc)[:200]}}).encode()
                    self.send_response(502)
                    self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


def _node_cells(kind: ClientKind, version: str, config: Config, profile: Profile,
                before_send: Callable[[], None], record: Callable[[Exchange], None]) -> list[Cell]:
    recorder = _Recorder(config, profile, "openai_typescript", before_send, record)
    with _Forwarder(recorder) as url:
        out = node_openai.run({"baseURL": url, "apiKey": config.api_key or "", "wrongKey": WRONG_KEY,
                               "model": config.model, "prompt": PROMPT, "toolPrompt": TOOL_PROMPT, "tool": TOOL,
                               "maxTokens": config.max_tokens, "timeoutMs": int(config.timeout * 1000),
                               "retries": config.retries, "headers": request_headers(config)})
    by_capability: dict[str, list[Exchange]] = {}
    for exchange in recorder.transport.exchanges:
        by_capability.setdefault(exchange.scenario, []).append(exchange)
    keys = {"parse": "parse", "stream": "stream", "tool calls": "tools", "typed error": "error"}
    cells: list[Cell] = []
    for capability in CAPABILITIES:
        recorder.capability = capability
        exchanges = by_capability.get(recorder.scenario(), [])
        last = exchanges[-1] if exchanges else None
        result = out.get(keys[capability])
        if last is not None and last.status == 429:
            verdict = (NOT_RUN, THROTTLED)
        elif not isinstance(result, dict):
            verdict = (FAIL, str(out.get("crash") or "node gave no result"))
        elif capability == "typed error":
            verdict = judge_error(bool(result.get("typed")), result.get("status"), str(result.get("detail")), last)
        elif not result.get("ok") and capability == "tool calls" and not _carried_calls(last, streamed=True):
            verdict = _no_call(str(result.get("detail")))
        elif not result.get("ok"):
            verdict = (FAIL, str(result.get("detail")))
        elif capability == "parse":
            verdict = judge_parse(result.get("built"), last)
        elif capability == "stream":
            verdict = judge_stream(len(result.get("built") or []), last)
        else:
            verdict = judge_tools(result.get("built"), last, streamed=True)
        cells.append(Cell(kind.name, kind.language, version, capability, *verdict, exchanges=exchanges))
    return cells


def run_matrix(config: Config, profile: Profile, before_send: Callable[[], None] = lambda: None,
               record: Callable[[Exchange], None] = lambda e: None) -> list[Cell]:
    """Every cell of the profile's clients; a client that is not installed gives `not run` cells that say
    how to install it."""
    cells: list[Cell] = []
    for kind in clients_for(profile):
        version = kind.version()
        if version is None:
            cells += [Cell(kind.name, kind.language, "-", c, NOT_RUN, f"not installed: {kind.install_line()}")
                      for c in CAPABILITIES]
        elif kind.language == "TypeScript":
            cells += _node_cells(kind, version, config, profile, before_send, record)
        else:
            cells += _python_cells(kind, version, config, profile, before_send, record)
    return cells


def markdown(cells: list[Cell]) -> str:
    """The matrix as a table: a row per client and version, a column per capability."""
    rows = ["| client | language | version | " + " | ".join(CAPABILITIES) + " |",
            "|---|---|---|" + "---|" * len(CAPABILITIES)]
    seen: dict[tuple[str, str, str], dict[str, str]] = {}
    for cell in cells:
        seen.setdefault((cell.client, cell.language, cell.version), {})[cell.capability] = cell.status
    for (client, language, version), statuses in seen.items():
        rows.append(f"| {client} | {language} | {version} | "
                    + " | ".join(statuses.get(c, "-") for c in CAPABILITIES) + " |")
    return "\n".join(rows)
