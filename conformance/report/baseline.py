"""Accepted deviations: a requirement that is known to fail on a target, with a reason and an expiry.

A listed failure is reported as `known` and does not fail the run; a listed requirement that now passes
is `stale` and fails the run, so the list only shrinks; an expired entry fails the run.

    without = ["logprobs"]          # optional: the claims the deviations were judged under, added
    claims = ["unknown-model-404"]  # to the run's (conformance.config.load.baseline_claims)

    [[accepted]]
    id = "SEM-008"
    reason = "the gateway ignores max_completion_tokens"
    expires = 2027-03-31
"""

from __future__ import annotations

import datetime as dt
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path

from conformance.config import ConfigError
from conformance.config.load import MAX_BASELINE_BYTES
from conformance.contract import catalogue
from conformance.inputs import InputError, read_capped


@dataclass(frozen=True)
class Entry:
    id: str
    reason: str
    expires: dt.date | None = None

    def expired(self, today: dt.date | None = None) -> bool:
        return self.expires is not None and self.expires < (today or dt.date.today())


def _date(value: object, where: str) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value if not isinstance(value, dt.datetime) else value.date()
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(f"{where}: expires {value!r} is not a date like 2027-03-31") from None


def load(path: str | Path) -> dict[str, Entry]:
    path = Path(path)
    try:
        raw = read_capped(path, MAX_BASELINE_BYTES, "baseline", "--baseline", "baseline file")
        text = raw.decode("utf-8", "replace")
    except InputError as exc:
        raise ConfigError(str(exc)) from None
    try:
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except RecursionError:
        raise ConfigError(f"baseline {path} nests too deep to read: fix the syntax") from None
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"baseline {path} is not valid {'JSON' if path.suffix == '.json' else 'TOML'} ({exc}): "
                          "fix the syntax") from None
    rows = data.get("accepted") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise ConfigError(f"baseline {path}: expected a list of [[accepted]] entries with id and reason")
    entries: dict[str, Entry] = {}
    for i, row in enumerate(rows, 1):
        where = f"baseline {path}, entry {i}"
        if not isinstance(row, dict) or not isinstance(row.get("id"), str) or not row.get("reason"):
            raise ConfigError(f"{where}: every entry needs an id and a reason")
        if row["id"] not in catalogue.BY_ID:
            raise ConfigError(f"{where}: unknown requirement {row['id']!r} (see sgp-conformance list)")
        if row["id"] in entries:
            raise ConfigError(f"{where}: {row['id']} is listed twice")
        entries[row["id"]] = Entry(row["id"], str(row["reason"]), _date(row.get("expires"), where))
    return entries
