"""Reading a run's configuration: flags > environment > TOML file > defaults, checked before any request.

`resolve` returns a `Config` or raises `ConfigError` with a message that names the fix.
"""

from __future__ import annotations

import json
import math
import os
import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from conformance.config.settings import (
    DEPTHS,
    ENV_VARS,
    FAIL_ON,
    JUNIT_SHOULD,
    Config,
    ConfigError,
    is_loopback,
    unsendable,
)
from conformance.contract import claims
from conformance.contract.profiles import PROFILES
from conformance.inputs import InputError, read_capped

FIELD_TYPES = {f.name: f.type for f in fields(Config)}
# the lowest --rate-limit (requests per second) other than 0 (no limit)
MIN_RATE = 0.001
# a configuration file is a few lines; anything past this is not one
MAX_CONFIG_BYTES = 1_000_000
# a baseline lists accepted deviations; read here for its claims and in report.baseline for its entries
MAX_BASELINE_BYTES = 10_000_000


def _coerce(name: str, value: Any) -> Any:
    if value is None:
        return None
    base = str(FIELD_TYPES[name]).replace(" | None", "")
    try:
        if base == "bool":
            return value if isinstance(value, bool) else str(value).strip().lower() in {"1", "true", "yes", "on"}
        if base == "int":
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if base == "float":
            # a rate may be written as it is read: 5/s
            return float(value.removesuffix("/s")) if isinstance(value, str) else float(value)
        if base == "list[str]" and name == "headers" and isinstance(value, str):
            # header values may hold commas: one header a line
            return [v.strip() for v in value.splitlines() if v.strip()]
        if base == "frozenset[str]":
            items = value.split(",") if isinstance(value, str) else value
            if not isinstance(items, (list, tuple, set, frozenset)):
                raise TypeError
            return frozenset(str(v).strip() for v in items if str(v).strip())
        if base == "list[str]":
            return [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else list(value)
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name.replace('_', '-')}: {value!r} is not a valid {base}") from None


def read_config_file(path: Path) -> dict[str, Any]:
    """Settings from a TOML file: a [tool.sgp-conformance] table, or top-level keys in a file of its own."""
    try:
        # bounded, counted in bytes read: --config /dev/zero or a FIFO is refused, never read without end
        raw = read_capped(path, MAX_CONFIG_BYTES, "config file", "--config", "TOML file")
        data = tomllib.loads(raw.decode("utf-8"))
    except InputError as exc:
        raise ConfigError(str(exc)) from None
    except RecursionError:
        raise ConfigError(f"config file {path} nests tables or arrays too deep to read: fix the syntax") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid TOML ({exc}): fix the syntax") from None
    table = data.get("tool", {}).get("sgp-conformance")
    if table is None:
        table = {} if path.name == "pyproject.toml" else data
    if not isinstance(table, dict):
        raise ConfigError(f"config file {path}: [tool.sgp-conformance] must be a table")
    settings: dict[str, Any] = {}
    for key, value in table.items():
        name = key.replace("-", "_")
        if name not in FIELD_TYPES:
            known = ", ".join(sorted(f.replace("_", "-") for f in FIELD_TYPES))
            raise ConfigError(f"config file {path}: unknown setting {key!r} (known: {known})")
        if name == "api_key":
            raise ConfigError(f"config file {path}: put the key in SGP_API_KEY, not in a file")
        settings[name] = value
    return settings


def resolve(flags: dict[str, Any], env: dict[str, str] | None = None, config_file: str | None = None,
            cwd: Path | None = None) -> Config:
    """Merge the four sources and validate the result."""
    env = dict(os.environ) if env is None else env
    merged: dict[str, Any] = {}
    path = Path(config_file) if config_file else (cwd or Path.cwd()) / "pyproject.toml"
    if config_file or path.is_file():
        merged.update(read_config_file(path))
    for name, var in ENV_VARS.items():
        if env.get(var):
            merged[name] = env[var]
    merged.update({k: v for k, v in flags.items() if v is not None and k in FIELD_TYPES})
    config = Config(**{k: _coerce(k, v) for k, v in merged.items()})
    if config.baseline:
        config.without, config.claims = baseline_claims(Path(config.baseline), config.without, config.claims)
    validate(config)
    from conformance.config.network import check

    check(config, env)
    return config


def baseline_claims(path: Path, without: frozenset[str],
                    claims_: frozenset[str]) -> tuple[frozenset[str], frozenset[str]]:
    """The claims a baseline file records beside its accepted deviations (top-level `without = [...]` and
    `claims = [...]`), added to the run's: a team keeps the promises its baseline was judged under in the
    same file. A file that cannot be read adds nothing here (report.baseline names the problem)."""
    try:
        # bounded as report.baseline reads it: /dev/zero or a FIFO given as the baseline is refused there
        text = read_capped(path, MAX_BASELINE_BYTES, "baseline").decode("utf-8")
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (InputError, OSError, ValueError, RecursionError, tomllib.TOMLDecodeError):
        return without, claims_
    if not isinstance(data, dict):
        return without, claims_
    extra = {name: _coerce(name, data.get(name) or []) for name in ("without", "claims")}
    return without | extra["without"], claims_ | extra["claims"]


def require_key(config: Config, option: str = "--api-key") -> None:
    """A target given by URL needs a key: without one every request would be refused, and the auth rules
    would judge an empty header the tool itself built (the embedded server makes its own key). `option` is
    the flag that gives the key where the error is read (pytest's is --sgp-api-key)."""
    if config.base_url is not None and not config.api_key:
        raise ConfigError(f"no API key configured: set SGP_API_KEY in the environment (or pass {option}); "
                          "for a server without auth, any value will do")


def validate(config: Config) -> None:
    if config.profile not in PROFILES:
        raise ConfigError(f"unknown profile {config.profile!r}: use --profile {' or '.join(sorted(PROFILES))}")
    if config.depth not in DEPTHS:
        raise ConfigError(f"unknown depth {config.depth!r}: use --depth {', '.join(DEPTHS)}")
    if config.fail_on not in FAIL_ON:
        raise ConfigError(f"unknown --fail-on {config.fail_on!r}: use must or should")
    if config.junit_should not in (None, *JUNIT_SHOULD):
        raise ConfigError(f"unknown --junit-should {config.junit_should!r}: use {', '.join(JUNIT_SHOULD)}")
    for name in ("timeout", "stream_timeout", "max_retry_wait", "rate_limit"):
        # nan compares false with everything: without this it passes every bound below
        if not math.isfinite(getattr(config, name)):
            raise ConfigError(f"--{name.replace('_', '-')} {getattr(config, name)!r} is not a finite number: "
                              "give e.g. 20")
    for name in ("timeout", "stream_timeout"):
        if getattr(config, name) <= 0:
            raise ConfigError(f"--{name.replace('_', '-')} must be a positive number of seconds")
    for name in ("max_tokens", "max_requests", "concurrency", "max_body_bytes"):
        if getattr(config, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be at least 1")
    try:
        claims.check(config.without, config.claims)
    except claims.UnknownClaim as exc:
        raise ConfigError(str(exc)) from None
    if config.concurrency_probe is not None and not 0 <= config.concurrency_probe <= 64:
        raise ConfigError("--concurrency-probe must be between 0 (no probe) and 64")
    if config.rate_limit < 0 or config.retries < 0:
        raise ConfigError("--rate-limit and --retries cannot be negative")
    if 0 < config.rate_limit < MIN_RATE:
        # the pause between requests is 1/rate: below this a run would wait for hours (or overflow a sleep)
        raise ConfigError(f"--rate-limit {config.rate_limit:g} is below {MIN_RATE:g}/s, one request every "
                          f"{1 / MIN_RATE:g} s: give a larger rate, or 0 for no limit")
    if config.max_throttle_wait is not None and not (math.isfinite(config.max_throttle_wait)
                                                      and config.max_throttle_wait >= 0):
        raise ConfigError("--max-throttle-wait must be a finite number of seconds, 0 or more")
    if config.max_examples is not None and config.max_examples < 1:
        raise ConfigError("--max-examples must be at least 1")
    if not (config.model or "").strip():
        raise ConfigError("--model is empty: give the model to ask for, e.g. --model openai/gpt-4o-mini")
    for name, flag in (("api_key", "the API key (SGP_API_KEY or --api-key)"),
                       ("account_id", "the account id (--account-id or SGP_ACCOUNT_ID)")):
        why = unsendable(getattr(config, name) or "")
        if why:
            raise ConfigError(f"{flag} cannot be sent in an HTTP header: it {why}; check how it was set "
                              "(a stray newline or a pasted character)")
    if config.base_url is not None:
        check_base_url(config)


def _with_scheme(url: str) -> str | None:
    """The URL a scheme-less --base-url most likely meant (`localhost:8000` -> `http://localhost:8000`): http
    for a loopback host, https otherwise; None when it does not read as a host at all."""
    if "://" in url or not url.strip():
        return None
    try:
        host = urlsplit(f"http://{url}").hostname
    except ValueError:
        return None
    if not host:
        return None
    loopback = is_loopback(host)
    if not loopback and "." not in host:
        return None
    return f"{'http' if loopback else 'https'}://{url}"


def check_base_url(config: Config) -> None:
    url = config.base_url or ""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:  # an unclosed IPv6 bracket, a port that is no number or out of range
        raise ConfigError(f"--base-url {url!r} is not a valid URL ({exc}): give e.g. https://api.example.com") \
            from None
    if port == 0:
        raise ConfigError(f"--base-url {url!r} has port 0: give the port the server listens on")
    if any(ord(char) <= 0x20 or ord(char) == 0x7F for char in url):
        raise ConfigError(f"--base-url {url!r} holds a space or a control character: give the URL percent-encoded, "
                          "e.g. https://api.example.com/v1")
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        meant = _with_scheme(url)
        if meant:
            raise ConfigError(f"--base-url {url!r} has no scheme: did you mean {meant}?")
        raise ConfigError(f"--base-url {url!r} is not an http(s) URL: give e.g. https://api.example.com")
    if parts.query or parts.fragment:
        raise ConfigError(f"--base-url {url!r} must not carry a query or fragment")
    if parts.scheme == "http" and not is_loopback(parts.hostname) and not config.allow_insecure_http:
        raise ConfigError(
            f"refusing to send the key over plain http to {parts.hostname}: use https, "
            "or pass --allow-insecure-http if this network is trusted"
        )

