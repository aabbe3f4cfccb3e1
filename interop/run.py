"""Run sgp-conformance against each interop server, write the reports, and compare with the committed ones.

    python -m interop.run [--servers litellm,prism,prism-dynamic,llama-cpp] [--report-root DIR] [--update]

Per server: install (cached), start on 127.0.0.1 with a free port, wait for readiness, then per profile
it serves run `sgp-conformance run --base-url ... --profile ... --model ... --report-dir
<root>/<server>-<profile> --fail-on should` with the key in SGP_API_KEY, and stop the server by PID,
also on Ctrl-C or SIGTERM. Writes <root>/interop-results.json and prints a summary table.
Options after `--` go to every `sgp-conformance run`.

Exit codes: 0 when every run repeats its committed result (interop/results/) and every failure is a TRUE
verdict; 1 when a run differs from the committed one or a failure is FALSE, DUP or unclassified; 2 when a
server could not be installed or started, or the committed files cannot be read; 130 on Ctrl-C.
`--update` commits this run's results instead of comparing (and regenerates docs/interop.md).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from interop import results as committed
from interop.cache import CACHE_ENV, Cache, InstallError
from interop.process import StartError, stop_group
from interop.recipes import RECIPES, Launch, Recipe

RESULTS_FILE = "interop-results.json"
# 2: every run carries its suite, seed, claims, server command and install/ready times (one row each)
FORMAT_VERSION = 2
LEVELS = committed.LEVELS
# the keys the runner makes (interop/recipes.py): none may reach a committed report
GENERATED_KEY = re.compile(r"sk-(?:interop|backend)-[0-9a-f]{8,}")
# per failed requirement, how many violation messages are kept in interop-results.json
MAX_VIOLATIONS = 5


def _suite_command() -> list[str]:
    """How to start sgp-conformance: the console script beside this interpreter, else on PATH."""
    beside = Path(sys.executable).parent / "sgp-conformance"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("sgp-conformance")
    if found:
        return [found]
    return [sys.executable, "-c", "import sys; from conformance.cli import main; sys.exit(main())"]


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10,
                             cwd=Path(__file__).resolve().parent, check=False)
    except OSError:
        return None
    return out.stdout.strip() or None


def _git_commits() -> dict[str, str | None]:
    """The checkout's commit (with "-dirty" when files differ from it), and the last commit that changed the
    suite itself (conformance/, schemas/)."""
    commit = _git("rev-parse", "--short", "HEAD")
    if commit and _git("status", "--porcelain", "--untracked-files=no", "--", ".."):
        commit += "-dirty"
    return {"commit": commit,
            "suite_commit": _git("log", "-1", "--format=%h", "--", "../conformance", "../schemas")}


def _suite_version() -> str:
    from conformance import __version__

    return __version__


def _pump(stream: Any, sink: Any, echo: bool) -> None:
    for line in iter(stream.readline, b""):
        sink.write(line)
        sink.flush()
        if echo:
            sys.stdout.write("    " + line.decode("utf-8", errors="replace"))
            sys.stdout.flush()


def run_suite(cmd: list[str], env: dict[str, str], cwd: Path, log: Path, timeout: float,
              echo: bool) -> tuple[int | None, float]:
    """Run one `sgp-conformance run` in its own session; its exit code (None on time-out) and wall time."""
    started = time.monotonic()
    with log.open("wb") as sink:
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        pump = threading.Thread(target=_pump, args=(proc.stdout, sink, echo), daemon=True)
        pump.start()
        try:
            code: int | None = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            code = None
            stop_group(proc, grace=5.0)
        except BaseException:
            stop_group(proc, grace=5.0)
            raise
        finally:
            pump.join(timeout=10)
    return code, time.monotonic() - started


def _short(path: Path) -> str:
    """`path` relative to the working directory when it lies below it (shorter commands in the reports)."""
    relative = os.path.relpath(path)
    return str(path) if relative.startswith("..") else relative


def _failures(doc: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for result in doc.get("results", []):
        if result.get("status") not in ("fail", "error", "stale"):
            continue
        violations = [
            {k: v.get(k) for k in ("requirement", "pointer", "scenario", "message") if v.get(k) is not None}
            for v in (result.get("violations") or [])[:MAX_VIOLATIONS]
        ]
        out.append({
            "id": result["id"],
            "level": result["level"],
            "status": result["status"],
            "message": result.get("message", ""),
            "violation_count": result.get("violation_count", len(result.get("violations") or [])),
            "violations": violations,
            "statuses": sorted({s.get("status") for s in (result.get("evidence") or {}).get("scenarios", [])
                                if s.get("status") is not None}),
        })
    return out


def _read_doc(report_dir: Path) -> dict[str, Any] | None:
    try:
        doc: dict[str, Any] = json.loads((report_dir / "conformance.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc


def _counts(doc: dict[str, Any] | None) -> dict[str, dict[str, int]]:
    counts = (doc or {}).get("counts", {})
    return {level: dict(counts.get(level, {})) for level in LEVELS}


def test_server(recipe: Recipe, launch: Launch, profile: str, args: argparse.Namespace, root: Path,
                cache: Cache, api_key: str, version: str) -> dict[str, Any]:
    """One `sgp-conformance run` against a started server, as a record for interop-results.json."""
    report_dir = root / f"{recipe.name}-{profile}"
    report_dir.mkdir(parents=True, exist_ok=True)
    cmd = [*_suite_command(), "run", "--base-url", launch.base_urls[profile], "--profile", profile,
           "--model", launch.model]
    if launch.account_id:
        cmd += ["--account-id", launch.account_id]
    cmd += ["--report-dir", _short(report_dir), "--fail-on", args.fail_on, "--depth", args.depth,
            "--seed", str(args.seed)]
    if args.clients:
        cmd.append("--clients")
    cmd += [*launch.suite_args, *args.suite_args]
    env = dict(os.environ, SGP_API_KEY=api_key,
               HYPOTHESIS_STORAGE_DIRECTORY=str(cache.path("hypothesis", f"{recipe.name}-{profile}")))
    for name in ("SGP_BASE_URL", "SGP_ACCOUNT_ID", "SGP_MODEL", "SGP_PROFILE"):
        env.pop(name, None)
    shown = "SGP_API_KEY=*** sgp-conformance " + " ".join(cmd[cmd.index("run"):])
    print(f"\n== {recipe.name} / {profile}: {shown}", flush=True)
    # run in the report directory: no pyproject.toml of the caller's working directory is read as config
    started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    real = [str(report_dir) if part == _short(report_dir) else part for part in cmd]
    code, wall = run_suite(real, env, report_dir, report_dir / "run.log", args.run_timeout, echo=not args.quiet)
    doc = _read_doc(report_dir)
    return {
        "server": recipe.name,
        "profile": profile,
        "version": version,
        "description": recipe.description,
        "suite": {"version": _suite_version(), **_git_commits()},
        "seed": args.seed,
        "claims": _claims(args.suite_args),
        "command": shown,
        "base_url": launch.base_urls[profile],
        "model": launch.model,
        "started": started,
        "exit_code": code,
        "timed_out": code is None,
        "wall_s": round(wall, 1),
        "report_dir": os.path.relpath(report_dir, root),
        "verdict": (doc or {}).get("verdict"),
        "requests_sent": ((doc or {}).get("requests") or {}).get("sent"),
        "by_status": ((doc or {}).get("requests") or {}).get("by_status", {}),
        "counts": _counts(doc),
        "failures": _failures(doc or {}),
        "error": None if doc else "no conformance.json written (see run.log)",
    }


def _claims(suite_args: list[str]) -> list[str]:
    """What the server was said to claim, from the suite's options after `--`: each choice of `--claim A,B`
    and each feature of `--without F,G` as "without F" (`sgp-conformance run --help`); none by default."""
    out = []
    for i, arg in enumerate(suite_args):
        for option, prefix in (("--claim", ""), ("--without", "without ")):
            if arg == option and i + 1 < len(suite_args):
                value = suite_args[i + 1]
            elif arg.startswith(f"{option}="):
                value = arg.split("=", 1)[1]
            else:
                continue
            out += [f"{prefix}{part.strip()}" for part in value.split(",") if part.strip()]
    return out


def _not_run(recipe: Recipe, profile: str, version: str, error: str) -> dict[str, Any]:
    return {"server": recipe.name, "profile": profile, "version": version, "description": recipe.description,
            "suite": {"version": _suite_version(), **_git_commits()}, "seed": None, "claims": [],
            "command": None, "exit_code": None, "timed_out": False, "wall_s": 0.0, "report_dir": None,
            "verdict": None, "requests_sent": 0, "by_status": {}, "counts": _counts(None), "failures": [],
            "error": error}


# the outcomes of conformance.json (docs/reports.md) a cell shows: pass/fail/not judged/observed, then the
# rarer ones only where they occur
CELL = ("pass", "fail", "not judged", "observed")
RARE = ("not run", "error", "known", "stale")


def count_cell(counts: dict[str, int]) -> str:
    cell = "/".join(str(counts.get(k, 0)) for k in CELL)
    rare = [f"{counts[k]} {k}" for k in RARE if counts.get(k)]
    return cell + (f" (+{', '.join(rare)})" if rare else "")


def summary_table(runs: list[dict[str, Any]]) -> str:
    header = ("server", "profile", "version", "exit", "wall s", "MUST p/f/nj/o", "SHOULD p/f/nj/o", "INFO p/f/nj/o")
    rows = [header]
    for r in runs:
        exit_text = "timeout" if r["timed_out"] else ("-" if r["exit_code"] is None else str(r["exit_code"]))
        rows.append((r["server"], r["profile"], r["version"], exit_text, f"{r['wall_s']:.1f}",
                     *(count_cell(r["counts"][level]) for level in LEVELS)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    for r in runs:
        if r["error"]:
            lines.append(f"{r['server']}/{r['profile']}: {r['error'].splitlines()[0]}")
        for f in r["failures"]:
            lines.append(f"{r['server']}/{r['profile']}: {f['id']} {f['level']} {f['status']}: {f['message'][:90]}")
    return "\n".join(lines)


def merge_previous(path: Path, results: dict[str, Any], ran: list[str]) -> dict[str, Any]:
    """Keep the runs of servers not run this time from an earlier results file of the same format, so
    `--servers X` re-runs X alone and the file still covers every server."""
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return results
    if old.get("format_version") != FORMAT_VERSION:
        return results
    kept = [r for r in old.get("runs", []) if r.get("server") not in ran]
    if not kept:
        return results
    servers = {k: v for k, v in old.get("servers", {}).items() if k not in ran}
    servers.update(results["servers"])
    order = list(RECIPES)
    runs = sorted(kept + results["runs"], key=lambda r: (order.index(r["server"]) if r["server"] in order
                                                          else len(order), r["profile"]))
    return {**results, "servers": servers, "runs": runs,
            "merged": sorted({*old.get("merged", []), *(r["server"] for r in kept)})}


class _Terminated(Exception):
    pass


def _on_sigterm(signum: int, frame: Any) -> None:
    raise _Terminated()


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m interop.run", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", default=",".join(RECIPES),
                        help=f"comma-separated, from {', '.join(RECIPES)} (default: all)")
    parser.add_argument("--report-root", default="interop-reports",
                        help="reports go to ROOT/<server>-<profile>/ and ROOT/interop-results.json")
    parser.add_argument("--cache", help=f"cache folder (default ${CACHE_ENV} or ~/.cache/sgp-conformance-interop)")
    parser.add_argument("--depth", default="standard", choices=("smoke", "standard", "deep"))
    parser.add_argument("--fail-on", default="should", choices=("must", "should"))
    # one seed for every target: a rerun sends the same generated cases, so the published figures repeat
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated cases (default 1)")
    parser.add_argument("--clients", action=argparse.BooleanOptionalAction, default=True,
                        help="also drive the official SDKs (sgp-conformance run --clients; default on)")
    parser.add_argument("--ready-timeout", type=float, default=240.0, help="seconds a server may take to start")
    parser.add_argument("--run-timeout", type=float, default=1200.0, help="seconds one suite run may take")
    parser.add_argument("--install-only", action="store_true", help="install every chosen server, run nothing")
    parser.add_argument("--quiet", action="store_true", help="do not echo the suite's output")
    parser.add_argument("--update", action="store_true",
                        help="commit this run: rewrite interop/results/ for the targets "
                             "run (their conformance.json too) and regenerate docs/interop.md")
    cut = argv.index("--") if "--" in argv else len(argv)
    own, rest = argv[:cut], argv[cut + 1:]
    args = parser.parse_args(own)
    args.suite_args = rest
    names = [n.strip() for n in args.servers.split(",") if n.strip()]
    unknown = [n for n in names if n not in RECIPES]
    if unknown:
        parser.error(f"unknown server(s) {', '.join(unknown)}: choose from {', '.join(RECIPES)}")
    args.server_names = names
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    cache = Cache.from_env(args.cache)
    root = Path(args.report_root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    started_at = dt.datetime.now(dt.UTC)
    t0 = time.monotonic()
    runs: list[dict[str, Any]] = []
    servers: dict[str, dict[str, Any]] = {}
    interrupted = False
    try:
        for name in args.server_names:
            recipe = RECIPES[name]
            info: dict[str, Any] = servers.setdefault(name, {"description": recipe.description})
            t_install = time.monotonic()
            try:
                recipe.install(cache)
            except InstallError as exc:
                info["error"] = f"install failed: {exc}"
                runs += [_not_run(recipe, p, "not installed", info["error"]) for p in recipe.profiles]
                continue
            info["install_s"] = round(time.monotonic() - t_install, 1)
            info["version"] = version = recipe.version(cache)
            if args.install_only:
                continue
            api_key = f"sk-interop-{secrets.token_hex(16)}"
            try:
                launch = recipe.start(cache, api_key, args.ready_timeout)
            except StartError as exc:
                info["error"] = f"start failed: {exc}"
                runs += [_not_run(recipe, p, version, info["error"]) for p in recipe.profiles]
                continue
            info["ready_s"] = round(launch.ready_s, 1)
            info["server_command"] = " && ".join(launch.commands)
            print(f"\n== {name}: {version} ready in {launch.ready_s:.1f} s (pid {launch.process.pid})", flush=True)
            try:
                for profile in recipe.profiles:
                    run = test_server(recipe, launch, profile, args, root, cache, api_key, version)
                    # one row each: the server's times and command go with every profile it serves
                    run.update(install_s=info["install_s"], ready_s=info["ready_s"],
                               server_command=info["server_command"])
                    runs.append(run)
            finally:
                launch.stop()
                print(f"== {name}: stopped (pid {launch.process.pid})", flush=True)
    except (KeyboardInterrupt, _Terminated):
        interrupted = True
        print("\ninterop: interrupted; every server started was stopped", file=sys.stderr)
    finally:
        signal.signal(signal.SIGTERM, previous)
    results = {
        "format_version": FORMAT_VERSION,
        "started": started_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "wall_s": round(time.monotonic() - t0, 1),
        "interrupted": interrupted,
        "suite": {"version": _suite_version(), **_git_commits()},
        "settings": {"depth": args.depth, "fail_on": args.fail_on, "clients": args.clients,
                     "suite_args": args.suite_args},
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "servers": servers,
        "runs": runs,
    }
    if not args.install_only:
        results = merge_previous(root / RESULTS_FILE, results, args.server_names)
        (root / RESULTS_FILE).write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
        print("\n" + summary_table(runs))
        print(f"\nresults: {root / RESULTS_FILE}  (total {results['wall_s']:.0f} s)")
    if interrupted:
        return 130
    if args.install_only:
        return 2 if any(info.get("error") for info in servers.values()) else 0
    code = gate(runs, root, args.update)
    if any(info.get("error") for info in servers.values()):
        return 2
    return code


def _classification() -> dict[str, Any]:
    from interop.docs import load_classification

    return load_classification(committed.CLASSIFICATION_FILE)


def gate(runs: list[dict[str, Any]], root: Path, update: bool) -> int:
    """Compare `runs` with the committed results (or commit them, with `update`) and grade their failures;
    print one line per problem. 0, 1 (a difference or a failure that is not TRUE) or 2 (unreadable files)."""
    try:
        before = committed.load()
        classification = _classification()
    except (OSError, ValueError) as exc:
        print(f"interop: cannot read the committed results or the classification: {exc}", file=sys.stderr)
        return 2
    if update:
        leaks = commit(runs, root, before)
        if leaks:
            print(f"interop: not committed, a generated key is in {', '.join(leaks)}", file=sys.stderr)
            return 2
        found = []
    else:
        found = committed.differences(before, runs)
    found += committed.problems(runs, classification)
    for line in found:
        print(f"interop: {line}", file=sys.stderr)
    if not found:
        print("interop: every run repeats its committed result and every failure is a TRUE verdict")
    return 1 if found else 0


def commit(runs: list[dict[str, Any]], root: Path, before: dict[str, Any]) -> list[str]:
    """Write `runs` into the committed results (the other targets' runs kept), copy each run's
    conformance.json beside them, and regenerate docs/interop.md. The files a generated key was found in
    (nothing is written then)."""
    copies: dict[Path, str] = {}
    leaks = []
    checkout, home = f"{committed.HERE.parent}/", str(Path.home())
    for run in runs:
        # the page is the same on every machine: paths in the checkout relative to it, the home folder as ~
        for field in ("command", "server_command"):
            if isinstance(run.get(field), str):
                run[field] = run[field].replace(checkout, "").replace(home, "~")
        run["report"] = None
        if run.get("report_dir") is None:
            continue
        source = root / run["report_dir"] / committed.REPORT_NAME
        try:
            text = source.read_text(encoding="utf-8")
        except OSError:
            continue
        if GENERATED_KEY.search(text):
            leaks.append(str(source))
        name = f"{run['server']}-{run['profile']}/{committed.REPORT_NAME}"
        copies[committed.COMMITTED_DIR / name] = text
        run["report"] = name
    if leaks:
        return leaks
    for path, text in copies.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    ran = {committed.key(r) for r in runs}
    kept = [r for r in before.get("runs", []) if committed.key(r) not in ran]
    order = list(RECIPES)
    merged = sorted(kept + runs, key=lambda r: (order.index(r["server"]) if r["server"] in order else len(order),
                                                r["profile"]))
    data = {"format_version": FORMAT_VERSION, "runs": merged}
    committed.COMMITTED_DIR.mkdir(parents=True, exist_ok=True)
    committed.COMMITTED_FILE.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    from interop.docs import DEFAULT_OUT, render

    DEFAULT_OUT.write_text(render(data, _classification()), encoding="utf-8")
    print(f"interop: committed {len(runs)} run(s) to {committed.COMMITTED_FILE}; regenerated {DEFAULT_OUT}")
    return []


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        raise SystemExit(main())
