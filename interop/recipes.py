"""One recipe per server: install it under the cache folder, start it on 127.0.0.1, say where it serves.

A recipe never downloads model weights or binaries at run time: servers come from PyPI or the npm
registry, and the models are written locally: a GGUF for llama-cpp-python (`tiny_gguf.py`, with `gguf`), a
`save_pretrained` folder for `transformers serve` (`tiny_hf.py`). The key a server accepts is written to a
configuration file (mode 0600) that is removed when the server stops; it never appears on a command line
(`transformers serve` takes none).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import httpx

from interop.cache import Cache, installed, make_venv, mark_installed, run_logged
from interop.process import HOST, ServerProcess, free_port

HERE = Path(__file__).resolve().parent
# installs are slow on 2 cores; the llama.cpp compile dominates (about 13 min)
PIP_TIMEOUT = 1800.0
BUILD_TIMEOUT = 3600.0


@dataclass
class Launch:
    """A started server and what the runner needs to test it.

    `process` is the server under test; `backends` are servers it needs (started before it, stopped after
    it). The key files written for them are removed when the launch stops.
    """

    process: ServerProcess
    base_urls: dict[str, str]  # profile name -> base URL to give sgp-conformance
    model: str
    account_id: str | None
    ready_s: float
    secret_files: list[Path] = field(default_factory=list)
    backends: list[Launch] = field(default_factory=list)
    # options the suite needs for this server (a gateway's routing headers), before the runner's own
    suite_args: list[str] = field(default_factory=list)

    @property
    def commands(self) -> list[str]:
        return [*(c for b in self.backends for c in b.commands), " ".join(self.process.cmd)]

    def stop(self) -> None:
        try:
            self.process.stop()
        finally:
            for path in self.secret_files:
                path.unlink(missing_ok=True)
            for backend in reversed(self.backends):
                backend.stop()


def _write_secret(path: Path, text: str) -> Path:
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    return path


def _server_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a server: ours without the suite's key and without proxies to the outside."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SGP_")}
    env.update(extra or {})
    return env


def _pip_install(python: Path, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
    run_logged([str(python), "-m", "pip", "install", "-q", *args], log, timeout=PIP_TIMEOUT, env=env)


class Recipe:
    """A server the runner can install, start and stop."""

    name: str = ""
    profiles: tuple[str, ...] = ()
    description: str = ""

    def install(self, cache: Cache) -> None:
        raise NotImplementedError

    def version(self, cache: Cache) -> str:
        raise NotImplementedError

    def start(self, cache: Cache, api_key: str, ready_timeout: float) -> Launch:
        raise NotImplementedError


def _python_version_of(python: Path, dist: str) -> str:
    out = subprocess.run([str(python), "-c", f"import importlib.metadata as m; print(m.version({dist!r}))"],
                         capture_output=True, text=True, timeout=60, check=False)
    return out.stdout.strip() or "unknown"


# --- LiteLLM -------------------------------------------------------------------------------------------


class LiteLLM(Recipe):
    """LiteLLM proxy with a `mock_response` model (no backend) and a master key (real auth).

    litellm 1.108.0: the newest whose `proxy` extra resolves from PyPI here (later versions need
    `litellm-proxy` / newer `litellm-proxy-extras` releases the registry does not serve). `prisma` is
    installed too: without it a request with no key crashes LiteLLM's auth path with a 500.
    """

    name = "litellm"
    profiles = ("openai",)
    description = "LiteLLM proxy, mock_response model, master_key auth"
    SPEC = ("litellm[proxy]==1.108.0", "prisma==0.15.0")
    MODEL = "interop-mock"
    MOCK_TEXT = "Hello from the LiteLLM mock."

    def _venv(self, cache: Cache) -> Path:
        return cache.venv("litellm")

    def install(self, cache: Cache) -> None:
        venv = self._venv(cache)
        spec = " ".join(self.SPEC)
        if installed(venv, spec):
            return
        python = make_venv(venv, cache.log("litellm-install.log"))
        _pip_install(python, list(self.SPEC), cache.log("litellm-install.log"))
        mark_installed(venv, spec)

    def version(self, cache: Cache) -> str:
        return "litellm " + _python_version_of(self._venv(cache) / "bin" / "python", "litellm")

    def model_params(self, cache: Cache, ready_timeout: float) -> tuple[dict[str, str], list[Launch]]:
        """The litellm_params of the one model, and the backends they need (none: a mock answers)."""
        return {"model": f"openai/{self.MODEL}", "api_key": "not-used-by-a-mock",
                "mock_response": self.MOCK_TEXT}, []

    def start(self, cache: Cache, api_key: str, ready_timeout: float) -> Launch:
        params, backends = self.model_params(cache, ready_timeout)
        try:
            return self._start(cache, api_key, ready_timeout, params, backends)
        except BaseException:
            for backend in backends:
                backend.stop()
            raise

    def _start(self, cache: Cache, api_key: str, ready_timeout: float, params: dict[str, str],
               backends: list[Launch]) -> Launch:
        port = free_port()
        folder = cache.path("run", self.name)
        config = (
            "model_list:\n"
            f"  - model_name: {self.MODEL}\n"
            "    litellm_params:\n"
            + "".join(f"      {k}: {json.dumps(v)}\n" for k, v in params.items())
            + "general_settings:\n"
            f"  master_key: {json.dumps(api_key)}\n"
        )
        config_path = _write_secret(folder / "config.yaml", config)
        env = _server_env({
            # the model cost map from the package, not from the network
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "LITELLM_TELEMETRY": "False",
        })
        cmd = [str(self._venv(cache) / "bin" / "litellm"), "--config", str(config_path),
               "--host", HOST, "--port", str(port), "--num_workers", "1"]
        process = ServerProcess(self.name, cmd, cache.log(f"{self.name}-server.log"), env=env, cwd=folder)
        launch = Launch(process, {"openai": f"http://{HOST}:{port}/v1"}, self.MODEL, None, 0.0, [config_path],
                        backends)
        try:
            launch.ready_s = process.wait_ready(f"http://{HOST}:{port}/health/liveliness", ready_timeout,
                                                ready=lambda r: r.status_code == 200)
        except BaseException:
            launch.stop()
            raise
        return launch


# --- Prism ---------------------------------------------------------------------------------------------


class Prism(Recipe):
    """Stoplight Prism mocking the suite's own OpenAPI document (sgp profile), static or `--dynamic`."""

    profiles = ("sgp",)
    SPEC = "@stoplight/prism-cli@5.16.0"
    # prism-cli 5.16.0 applies the document's x-json-schema-faker options to its own json-schema-faker 0.5.9
    # while prism-http generates with a second copy, 0.5.8, so the options never apply
    # (stoplightio/prism#2683, fix proposed in #2853). npm's `overrides` installs one copy for both: then
    # `--dynamic` takes the schemas' examples (useExamplesValue), as the document asks.
    OVERRIDES: ClassVar[dict[str, str]] = {"json-schema-faker": "0.5.9"}
    MODEL = "openai/gpt-4o-mini"
    ACCOUNT = "acct-interop"
    SEED = "20261124"

    def __init__(self, dynamic: bool) -> None:
        self.dynamic = dynamic
        self.name = "prism-dynamic" if dynamic else "prism"
        self.description = f"Prism mock of schemas/openapi.json ({'dynamic' if dynamic else 'static'} examples)"

    @staticmethod
    def _folder(cache: Cache) -> Path:
        return cache.path("node", "prism")

    def _bin(self, cache: Cache) -> Path:
        return self._folder(cache) / "node_modules" / ".bin" / "prism"

    def install(self, cache: Cache) -> None:
        folder = self._folder(cache)
        spec = f"{self.SPEC} overrides={json.dumps(self.OVERRIDES, sort_keys=True)}"
        if installed(folder, spec) and self._bin(cache).exists():
            return
        package = {"name": "sgp-interop-prism", "private": True, "overrides": self.OVERRIDES}
        (folder / "package.json").write_text(json.dumps(package) + "\n", encoding="utf-8")
        # an earlier install without the override keeps the second copy (in its lock file and its tree)
        (folder / "package-lock.json").unlink(missing_ok=True)
        shutil.rmtree(folder / "node_modules", ignore_errors=True)
        run_logged(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", self.SPEC],
                   cache.log("prism-install.log"), timeout=PIP_TIMEOUT, cwd=folder)
        mark_installed(folder, spec)

    def version(self, cache: Cache) -> str:
        out = subprocess.run([str(self._bin(cache)), "--version"], capture_output=True, text=True, timeout=60,
                             check=False)
        return "prism-cli " + (out.stdout.strip() or "unknown")

    @staticmethod
    def write_document(cache: Cache) -> Path:
        """The sgp profile's OpenAPI document, bundled into one file (Prism needs it self-contained)."""
        from conformance.contract.schema_store import openapi_document

        path = cache.path("run", "prism") / "openapi-sgp.json"
        path.write_text(json.dumps(openapi_document("sgp"), indent=1), encoding="utf-8")
        return path

    def start(self, cache: Cache, api_key: str, ready_timeout: float) -> Launch:
        port = free_port()
        document = self.write_document(cache)
        cmd = [str(self._bin(cache)), "mock", "-h", HOST, "-p", str(port)]
        if self.dynamic:
            # a fixed seed: the same requests get the same generated answers, so runs are comparable
            cmd += ["--dynamic", "--seed", self.SEED]
        cmd.append(str(document))
        process = ServerProcess(self.name, cmd, cache.log(f"{self.name}-server.log"), env=_server_env(),
                                cwd=document.parent)
        launch = Launch(process, {"sgp": f"http://{HOST}:{port}"}, self.MODEL, self.ACCOUNT, 0.0)
        try:
            # any answer means it listens (Prism answers 404 for an unknown route)
            launch.ready_s = process.wait_ready(f"http://{HOST}:{port}/", ready_timeout)
        except BaseException:
            launch.stop()
            raise
        return launch


# --- llama-cpp-python -----------------------------------------------------------------------------------


class LlamaCpp(Recipe):
    """llama-cpp-python's OpenAI-compatible server with a tiny random llama GGUF written locally.

    The llama.cpp compile (about 13 min on 2 cores) happens once: `pip wheel` builds into
    <cache>/wheels and later installs take the wheel from there.
    """

    name = "llama-cpp"
    profiles = ("openai",)
    description = "llama-cpp-python server, tiny random llama GGUF (2 layers, byte-fallback vocabulary)"
    VERSION = "0.3.36"
    GGUF_SPEC = "gguf==0.19.0"
    MODEL = "interop-tiny"
    # a lean, portable build: no tests, examples, tools, server binary or curl (nothing fetched at run time)
    CMAKE_ARGS = ("-DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF "
                  "-DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF")

    def _venv(self, cache: Cache) -> Path:
        return cache.venv("llama-cpp")

    def _wheel(self, cache: Cache) -> Path | None:
        found = sorted(cache.path("wheels").glob(f"llama_cpp_python-{self.VERSION}-*.whl"))
        return found[-1] if found else None

    def install(self, cache: Cache) -> None:
        venv = self._venv(cache)
        spec = f"llama-cpp-python[server]=={self.VERSION} {self.GGUF_SPEC} cmake_args={self.CMAKE_ARGS}"
        if installed(venv, spec) and self._wheel(cache) is not None:
            return
        log = cache.log("llama-cpp-install.log")
        python = make_venv(venv, log)
        if self._wheel(cache) is None:
            env = dict(os.environ, CMAKE_ARGS=self.CMAKE_ARGS,
                       CMAKE_BUILD_PARALLEL_LEVEL=str(os.cpu_count() or 2))
            print("interop: building llama-cpp-python (compiles llama.cpp once; about 13 min on 2 cores)",
                  flush=True)
            run_logged([str(python), "-m", "pip", "wheel", "--no-deps", "-w", str(cache.path("wheels")),
                        f"llama-cpp-python=={self.VERSION}"], cache.log("llama-cpp-wheel-build.log"),
                       timeout=BUILD_TIMEOUT, env=env)
        _pip_install(python, ["--find-links", str(cache.path("wheels")), "--only-binary", "llama-cpp-python",
                              f"llama-cpp-python[server]=={self.VERSION}", self.GGUF_SPEC], log)
        mark_installed(venv, spec)

    def version(self, cache: Cache) -> str:
        return "llama-cpp-python " + _python_version_of(self._venv(cache) / "bin" / "python", "llama-cpp-python")

    def model_file(self, cache: Cache) -> Path:
        """The tiny GGUF, written by interop/tiny_gguf.py; its name carries a digest of that script."""
        script = HERE / "tiny_gguf.py"
        digest = hashlib.sha256(script.read_bytes()).hexdigest()[:12]
        path = cache.path("models") / f"tiny-random-llama-{digest}.gguf"
        if not path.exists():
            run_logged([str(self._venv(cache) / "bin" / "python"), str(script), str(path)],
                       cache.log("llama-cpp-model.log"), timeout=300)
        return path

    def start(self, cache: Cache, api_key: str, ready_timeout: float) -> Launch:
        port = free_port()
        folder = cache.path("run", "llama-cpp")
        settings = {
            "host": HOST,
            "port": port,
            "api_key": api_key,
            "models": [{
                "model": str(self.model_file(cache)),
                "model_alias": self.MODEL,
                "n_ctx": 4096,
                "n_threads": 2,
                "verbose": False,
            }],
        }
        config_path = _write_secret(folder / "config.json", json.dumps(settings, indent=1))
        cmd = [str(self._venv(cache) / "bin" / "python"), "-m", "llama_cpp.server", "--config_file",
               str(config_path)]
        process = ServerProcess(self.name, cmd, cache.log("llama-cpp-server.log"), env=_server_env(), cwd=folder)
        launch = Launch(process, {"openai": f"http://{HOST}:{port}/v1"}, self.MODEL, None, 0.0, [config_path])
        ok: Callable[[httpx.Response], bool] = lambda r: r.status_code == 200  # noqa: E731
        try:
            launch.ready_s = process.wait_ready(f"http://{HOST}:{port}/v1/models", ready_timeout, ready=ok,
                                                headers={"authorization": f"Bearer {api_key}"})
        except BaseException:
            launch.stop()
            raise
        return launch


# --- LiteLLM in front of llama-cpp-python ---------------------------------------------------------------


class LiteLLMOverLlamaCpp(LiteLLM):
    """LiteLLM proxy routing its one model to the llama-cpp-python server (its real OpenAI-compatible path,
    not mock_response): a gateway over a local model, as deployed."""

    name = "litellm-llama-cpp"
    description = "LiteLLM proxy routing to the llama-cpp-python server (openai provider), master_key auth"
    MODEL = "interop-tiny-via-litellm"

    def __init__(self, backend: LlamaCpp) -> None:
        self.backend = backend

    def install(self, cache: Cache) -> None:
        super().install(cache)
        self.backend.install(cache)

    def version(self, cache: Cache) -> str:
        return f"{super().version(cache)} over {self.backend.version(cache)}"

    def model_params(self, cache: Cache, ready_timeout: float) -> tuple[dict[str, str], list[Launch]]:
        backend_key = f"sk-backend-{secrets.token_hex(12)}"
        backend = self.backend.start(cache, backend_key, ready_timeout)
        return {"model": f"openai/{self.backend.MODEL}", "api_base": backend.base_urls["openai"],
                "api_key": backend_key}, [backend]


# --- WireMock ------------------------------------------------------------------------------------------


class WireMock(Recipe):
    """WireMock standalone (the jar of the npm package `wiremock`, which wraps it; never Maven Central),
    configured as its users mock OpenAI's chat completions: stub mappings in JSON files under `mappings/`.

    Per profile: a realistic static completion (OpenAI's documented example, the requested `model` echoed by
    response templating), a static event stream for `"stream": true` (matched with `matchesJsonPath`; ended
    by `data: [DONE]` under openai, by closing under sgp, whose SDKs cannot read `[DONE]`), a
    refusal for a body without `model` or `messages`, and a 401 for any other request to the route, which
    is what a request without the key (in the profile's header, compared with `equalTo`) falls through to.
    The mappings name the key, so they are written 0600 and removed when the server stops; the request
    journal is off (the admin API on the same port would otherwise hand out every request, keys included).
    """

    name = "wiremock"
    profiles = ("openai", "sgp")
    description = "WireMock standalone (npm `wiremock`), stub mappings for chat completions, key matched per profile"
    SPEC = "wiremock@3.13.2"
    MODEL = "gpt-4o-mini"
    ACCOUNT = "acct-interop"
    # the shared 2-core machine: a small heap, few threads
    JAVA = ("-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1")
    ID = "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT"
    CREATED = 1741569952
    MODEL_ECHO = "{{jsonPath request.body '$.model'}}"
    TEXT = ("Hello", "!", " How", " can", " I", " assist", " you", " today", "?")
    # per profile: path, key header and its value (format), the refusals' status and body
    PROFILE: ClassVar[dict[str, dict[str, object]]] = {
        "openai": {
            "path": "/v1/chat/completions", "header": "Authorization", "value": "Bearer {key}", "done": True,
            "unauthorized": (401, {"error": {
                "message": "Incorrect API key provided. You can find your API key at "
                           "https://platform.openai.com/account/api-keys.",
                "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}}),
            "invalid": (400, {"error": {
                "message": "Missing required parameter: 'model' or 'messages'.",
                "type": "invalid_request_error", "param": None, "code": "missing_required_parameter"}}),
        },
        "sgp": {
            # the SGP SDKs parse every data line as JSON: an SGP stream ends by closing (docs/contract.md)
            "path": "/v4/beta/chat/completions", "header": "x-api-key", "value": "{key}", "done": False,
            "unauthorized": (401, {"detail": "Invalid API key"}),
            "invalid": (422, {"detail": [{"type": "missing", "loc": ["body", "model"], "msg": "Field required",
                                          "input": None}]}),
        },
    }

    @staticmethod
    def _folder(cache: Cache) -> Path:
        return cache.path("node", "wiremock")

    def _jar(self, cache: Cache) -> Path | None:
        found = sorted((self._folder(cache) / "node_modules" / "wiremock" / "build").glob("wiremock-standalone-*.jar"))
        return found[-1] if found else None

    def install(self, cache: Cache) -> None:
        folder = self._folder(cache)
        if installed(folder, self.SPEC) and self._jar(cache) is not None:
            return
        (folder / "package.json").write_text('{"name": "sgp-interop-wiremock", "private": true}\n',
                                             encoding="utf-8")
        (folder / "package-lock.json").unlink(missing_ok=True)
        shutil.rmtree(folder / "node_modules", ignore_errors=True)
        run_logged(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", self.SPEC],
                   cache.log("wiremock-install.log"), timeout=PIP_TIMEOUT, cwd=folder)
        mark_installed(folder, self.SPEC)

    def version(self, cache: Cache) -> str:
        jar = self._jar(cache)
        if jar is None:
            return "wiremock unknown"
        java = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=60, check=False)
        # `openjdk version "17.0.15" 2025-04-15`: the quoted part
        quoted = (java.stderr or java.stdout).split('"')
        java_version = quoted[1] if len(quoted) > 2 else "?"
        return f"wiremock {jar.stem.removeprefix('wiremock-standalone-')} on java {java_version}"

    def _completion(self) -> dict[str, object]:
        return {
            "id": self.ID, "object": "chat.completion", "created": self.CREATED, "model": self.MODEL_ECHO,
            "choices": [{"index": 0,
                         "message": {"role": "assistant", "content": "".join(self.TEXT), "refusal": None,
                                     "annotations": []},
                         "logprobs": None, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 19, "completion_tokens": len(self.TEXT),
                      "total_tokens": 19 + len(self.TEXT),
                      "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                      "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                                    "accepted_prediction_tokens": 0,
                                                    "rejected_prediction_tokens": 0}},
            "service_tier": "default",
            "system_fingerprint": "fp_44709d6fcb",
        }

    def _stream(self, done: bool) -> str:
        def chunk(delta: dict[str, object], finish: str | None) -> str:
            body = {"id": self.ID, "object": "chat.completion.chunk", "created": self.CREATED,
                    "model": self.MODEL_ECHO, "service_tier": "default", "system_fingerprint": "fp_44709d6fcb",
                    "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
            return "data: " + json.dumps(body, separators=(",", ":")) + "\n\n"

        events = [chunk({"role": "assistant", "content": "", "refusal": None}, None)]
        events += [chunk({"content": piece}, None) for piece in self.TEXT]
        events.append(chunk({}, "stop"))
        return "".join(events) + ("data: [DONE]\n\n" if done else "")

    def mappings(self, api_key: str) -> dict[str, object]:
        """The stub mappings of both profiles, in one file as WireMock reads it (`{"mappings": [...]}`)."""
        stubs: list[dict[str, object]] = []
        for profile, conf in self.PROFILE.items():
            key = {str(conf["header"]): {"equalTo": str(conf["value"]).format(key=api_key)}}
            fields = [{"matchesJsonPath": "$.model"}, {"matchesJsonPath": "$.messages"}]
            unauthorized = conf["unauthorized"]
            invalid = conf["invalid"]
            assert isinstance(unauthorized, tuple) and isinstance(invalid, tuple)
            stubs += [
                {"name": f"{profile}: streamed completion", "priority": 1,
                 "request": {"method": "POST", "urlPath": conf["path"], "headers": key,
                             "bodyPatterns": [*fields, {"matchesJsonPath": "$[?(@.stream == true)]"}]},
                 "response": {"status": 200, "headers": {"Content-Type": "text/event-stream",
                                                         "Cache-Control": "no-cache"},
                              "body": self._stream(bool(conf["done"])),
                              "transformers": ["response-template"]}},
                {"name": f"{profile}: completion", "priority": 2,
                 "request": {"method": "POST", "urlPath": conf["path"], "headers": key, "bodyPatterns": fields},
                 "response": {"status": 200, "headers": {"Content-Type": "application/json"},
                              "jsonBody": self._completion(), "transformers": ["response-template"]}},
                {"name": f"{profile}: invalid request", "priority": 5,
                 "request": {"method": "POST", "urlPath": conf["path"], "headers": key},
                 "response": {"status": invalid[0], "headers": {"Content-Type": "application/json"},
                              "jsonBody": invalid[1]}},
                {"name": f"{profile}: missing or wrong key", "priority": 9,
                 "request": {"method": "POST", "urlPath": conf["path"]},
                 "response": {"status": unauthorized[0], "headers": {"Content-Type": "application/json"},
                              "jsonBody": unauthorized[1]}},
            ]
        return {"mappings": stubs}

    def start(self, cache: Cache, api_key: str, ready_timeout: float) -> Launch:
        jar = self._jar(cache)
        if jar is None:
            raise FileNotFoundError(f"no WireMock jar under {self._folder(cache)}: install first")
        port = free_port()
        folder = cache.path("run", self.name)
        root = folder / "wiremock"
        shutil.rmtree(root, ignore_errors=True)
        (root / "__files").mkdir(parents=True)
        (root / "mappings").mkdir()
        stubs = _write_secret(root / "mappings" / "chat-completions.json",
                              json.dumps(self.mappings(api_key), indent=1))
        cmd = ["java", *self.JAVA, "-jar", str(jar), "--bind-address", HOST, "--port", str(port),
               "--root-dir", str(root), "--no-request-journal", "--disable-banner", "--container-threads", "16"]
        process = ServerProcess(self.name, cmd, cache.log("wiremock-server.log"), env=_server_env(), cwd=folder)
        launch = Launch(process, {"openai": f"http://{HOST}:{port}/v1", "sgp": f"http://{HOST}:{port}"},
                        self.MODEL, self.ACCOUNT, 0.0, [stubs])
        try:
            launch.ready_s = process.wait_ready(f"http://{HOST}:{port}/__admin/health", ready_timeout,
                                                ready=lambda r: r.status_code == 200)
        except BaseException:
            launch.stop()
            raise
        return launch


# --- Portkey's AI gateway in front of the suite's reference server ----------------------------------------


class PortkeyGateway(Recipe):
    """Portkey's AI gateway (npm `@portkey-ai/gateway`, self-hosted), routing as its users route to an
    OpenAI-compatible server of their own: `x-portkey-provider: openai` and `x-portkey-custom-host` on every
    request, the client's `Authorization` passed on. Behind it: the suite's reference server, openai profile.

    The gateway's command line takes a port but no interface; `node_loopback.mjs` keeps it on 127.0.0.1.
    """

    name = "portkey"
    profiles = ("openai",)
    description = ("Portkey AI gateway, provider openai with a custom host: the suite's reference server "
                   "(sgp-conformance serve --profile openai)")
    SPEC = "@portkey-ai/gateway@1.15.2"
    MODEL = "openai/gpt-4o-mini"

    @staticmethod
    def _folder(cache: Cache) -> Path:
        return cache.path("node", "portkey")

    def _entry(self, cache: Cache) -> Path:
        return self._folder(cache) / "node_modules" / "@portkey-ai" / "gateway" / "build" / "start-server.js"

    def install(self, cache: Cache) -> None:
        folder = self._folder(cache)
        if installed(folder, self.SPEC) and self._entry(cache).exists():
            return
        (folder / "package.json").write_text('{"name": "sgp-interop-portkey", "private": true}\n', encoding="utf-8")
        # an install made with other pins keeps them in its lock file and its tree
        (folder / "package-lock.json").unlink(missing_ok=True)
        shutil.rmtree(folder / "node_modules", ignore_errors=True)
        run_logged(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", self.SPEC],
                   cache.log("portkey-install.log"), timeout=PIP_TIMEOUT, cwd=folder)
        mark_installed(folder, self.SPEC)

    def version(self, cache: Cache) -> str:
        package = self._entry(cache).parents[1] / "package.json"
        try:
            return "portkey-ai/gateway " + json.loads(package.read_text(encoding="utf-8"))["version"]
        except (OSError, ValueError, KeyError):
            return "portkey-ai/gateway unknown"

    def _reference(self, cache: Cache, api_key: str, ready_timeout: float) -> Launch:
        """The suite's reference server (openai profile) on a free loopback port; the key in its environment."""
        port = free_port()
        serve = Path(sys.executable).parent / "sgp-conformance"
        cmd = [str(serve), "serve", "--profile", "openai", "--host", HOST, "--port", str(port), "--quiet"]
        process = ServerProcess("reference", cmd, cache.log("portkey-reference-server.log"),
                                env=_server_env({"SGP_API_KEY": api_key}), cwd=cache.path("run", self.name))
        launch = Launch(process, {"openai": f"http://{HOST}:{port}/v1"}, self.MODEL, None, 0.0)
        try:
            launch.ready_s = process.wait_ready(f"http://{HOST}:{port}/", ready_timeout)
        except BaseException:
            launch.stop()
            raise
        return launch

    def start(self, cache: Cache, api_key: str, ready_timeout: float) -> Launch:
        backend = self._reference(cache, api_key, ready_timeout)
        try:
            port = free_port()
            cmd = ["node", "--import", str(HERE / "node_loopback.mjs"), str(self._entry(cache)), f"--port={port}",
                   "--headless"]
            process = ServerProcess(self.name, cmd, cache.log("portkey-server.log"), env=_server_env(),
                                    cwd=self._folder(cache))
            headers = {"x-portkey-provider": "openai", "x-portkey-custom-host": backend.base_urls["openai"]}
            launch = Launch(process, {"openai": f"http://{HOST}:{port}/v1"}, self.MODEL, None, 0.0,
                            backends=[backend],
                            suite_args=[arg for k, v in headers.items() for arg in ("--header", f"{k}: {v}")])
        except BaseException:
            backend.stop()
            raise
        try:
            # the gateway answers its root with a greeting once it listens
            launch.ready_s = process.wait_ready(f"http://{HOST}:{port}/", ready_timeout,
                                                ready=lambda r: r.status_code == 200)
        except BaseException:
            launch.stop()
            raise
        return launch


# --- Hugging Face transformers serve ----------------------------------------------------------------------


class TransformersServe(Recipe):
    """`transformers serve` (the transformers CLI's OpenAI-compatible server, FastAPI) with a tiny random Llama.

    The model folder is written locally by `tiny_hf.py` (random weights, a byte-level BPE trained on a few
    lines, a chat template) and served by a relative path, `interop-tiny`, from the run folder: a link to the
    folder in <cache>/models. Nothing is fetched: HF_HUB_OFFLINE and TRANSFORMERS_OFFLINE are set. PyTorch is
    the CPU build 2.13.0, installed first so that the serving extra keeps it.

    `transformers serve` has no API key: any key, or none, is served. It is started with one torch thread
    (OMP_NUM_THREADS=1): on the shared 2-core machine a tiny model generates about five times faster so
    (measured: 300 tokens in 1.0 s against 8.0 s with the default threads).
    """

    name = "transformers-serve"
    profiles = ("openai",)
    description = ("Hugging Face `transformers serve` (CPU, torch 2.13.0), tiny random Llama written locally "
                   "(2 layers, byte-level BPE), greedy; no API key support (any or no key is served)")
    TORCH = "torch==2.13.0"
    SPEC = "transformers[serving]==5.25.0"
    MODEL = "interop-tiny"
    SEED = "20240601"

    def _venv(self, cache: Cache) -> Path:
        return cache.venv("transformers-serve")

    def install(self, cache: Cache) -> None:
        venv = self._venv(cache)
        spec = f"{self.TORCH} {self.SPEC}"
        if installed(venv, spec):
            return
        log = cache.log("transformers-serve-install.log")
        python = make_venv(venv, log)
        # the CPU build on this machine's disk first; then the server, with torch held to it (a range that a
        # newer torch satisfies would otherwise fetch a CUDA build of several GB)
        _pip_install(python, [self.TORCH], log)
        _pip_install(python, [self.SPEC, self.TORCH], log)
        mark_installed(venv, spec)

    def version(self, cache: Cache) -> str:
        python = self._venv(cache) / "bin" / "python"
        return (f"transformers {_python_version_of(python, 'transformers')} "
                f"(torch {_python_version_of(python, 'torch')})")

    def model_folder(self, cache: Cache) -> Path:
        """The tiny model, written by interop/tiny_hf.py; its name carries a digest of that script and the spec."""
        script = HERE / "tiny_hf.py"
        digest = hashlib.sha256(script.read_bytes() + self.SPEC.encode()).hexdigest()[:12]
        path = cache.path("models") / f"tiny-random-llama-hf-{digest}"
        if not (path / "config.json").exists():
            run_logged([str(self._venv(cache) / "bin" / "python"), str(script), str(path)],
                       cache.log("transformers-serve-model.log"), timeout=300,
                       env=_server_env({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}))
        return path

    def start(self, cache: Cache, api_key: str, ready_timeout: float) -> Launch:
        port = free_port()
        folder = cache.path("run", self.name)
        link = folder / self.MODEL
        link.unlink(missing_ok=True)
        link.symlink_to(self.model_folder(cache), target_is_directory=True)
        env = _server_env({
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HOME": str(cache.path("run", self.name, "hf-home")),
            "OMP_NUM_THREADS": "1",
        })
        cmd = [str(self._venv(cache) / "bin" / "transformers"), "serve", self.MODEL, "--host", HOST,
               "--port", str(port), "--device", "cpu", "--default-seed", self.SEED]
        process = ServerProcess(self.name, cmd, cache.log(f"{self.name}-server.log"), env=env, cwd=folder)
        launch = Launch(process, {"openai": f"http://{HOST}:{port}/v1"}, self.MODEL, None, 0.0)
        try:
            # the model given on the command line is loaded before the server listens
            launch.ready_s = process.wait_ready(f"http://{HOST}:{port}/health", ready_timeout,
                                                ready=lambda r: r.status_code == 200)
        except BaseException:
            launch.stop()
            raise
        return launch


_LLAMA = LlamaCpp()
RECIPES: dict[str, Recipe] = {r.name: r for r in (LiteLLM(), Prism(dynamic=False), Prism(dynamic=True), _LLAMA,
                                                  LiteLLMOverLlamaCpp(_LLAMA), PortkeyGateway(),
                                                  WireMock(), TransformersServe())}
