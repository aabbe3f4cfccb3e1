"""Configuration: flags > environment > config file > defaults, and errors that name the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.config import Config, ConfigError, resolve


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults(tmp_path: Path) -> None:
    config = resolve({}, env={}, cwd=tmp_path)
    assert config == Config()
    assert config.profile == "sgp" and config.depth == "standard" and config.fail_on == "must"


def test_precedence_flags_over_env_over_file(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", '[tool.sgp-conformance]\nmodel = "file/model"\nmax-tokens = 7\n'
                                       'profile = "openai"\ntimeout = 5\n')
    env = {"SGP_MODEL": "env/model", "SGP_PROFILE": "sgp"}
    config = resolve({"model": "flag/model"}, env=env, cwd=tmp_path)
    assert config.model == "flag/model"
    assert config.profile == "sgp"
    assert config.max_tokens == 7 and config.timeout == 5.0
    assert resolve({}, env=env, cwd=tmp_path).model == "env/model"
    assert resolve({}, env={}, cwd=tmp_path).model == "file/model"


def test_explicit_config_file_with_top_level_keys(tmp_path: Path) -> None:
    path = write(tmp_path / "sgp.toml", 'base-url = "https://api.example.com"\ndepth = "deep"\n')
    config = resolve({}, env={}, config_file=str(path), cwd=tmp_path)
    assert config.base_url == "https://api.example.com" and config.depth == "deep"


def test_env_vars(tmp_path: Path) -> None:
    env = {"SGP_BASE_URL": "https://x.example.com", "SGP_API_KEY": "k-env", "SGP_ACCOUNT_ID": "acct"}
    config = resolve({}, env=env, cwd=tmp_path)
    assert (config.base_url, config.api_key, config.account_id) == ("https://x.example.com", "k-env", "acct")


def test_the_key_is_redacted_and_never_read_from_a_file(tmp_path: Path) -> None:
    config = resolve({"api_key": "sk-very-secret"}, env={}, cwd=tmp_path)
    assert "sk-very-secret" not in repr(config.redacted())
    path = write(tmp_path / "sgp.toml", 'api-key = "sk-in-a-file"\n')
    with pytest.raises(ConfigError, match="SGP_API_KEY"):
        resolve({}, env={}, config_file=str(path), cwd=tmp_path)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"profile": "azure"}, "unknown profile"),
        ({"depth": "medium"}, "unknown depth"),
        ({"fail_on": "info"}, "fail-on"),
        ({"timeout": 0}, "timeout"),
        ({"max_requests": 0}, "max-requests"),
        ({"max_tokens": "many"}, "max-tokens"),
        ({"base_url": "notaurl"}, "not an http"),
        ({"base_url": "ftp://host"}, "not an http"),
    ],
)
def test_invalid_settings_name_the_fix(flags: dict[str, object], message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve(flags, env={}, cwd=tmp_path)


def test_bad_config_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        resolve({}, env={}, config_file=str(tmp_path / "missing.toml"), cwd=tmp_path)
    with pytest.raises(ConfigError, match="not valid TOML"):
        resolve({}, env={}, config_file=str(write(tmp_path / "bad.toml", "x = [")), cwd=tmp_path)
    with pytest.raises(ConfigError, match="unknown setting"):
        resolve({}, env={}, config_file=str(write(tmp_path / "u.toml", "colour = 1\n")), cwd=tmp_path)


def test_rate_limit_reads_as_per_second(tmp_path: Path) -> None:
    assert resolve({"rate_limit": "5/s"}, env={}, cwd=tmp_path).rate_limit == 5.0
    assert resolve({"rate_limit": "0.5"}, env={}, cwd=tmp_path).rate_limit == 0.5
    with pytest.raises(ConfigError, match="rate-limit"):
        resolve({"rate_limit": "fast"}, env={}, cwd=tmp_path)
