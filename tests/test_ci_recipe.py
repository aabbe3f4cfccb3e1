"""examples/ci/gate.sh, the CI recipe as a plain shell script, run as a CI would run it: it starts the reference
server as the server under test, runs the suite (smoke depth, to stay cheap), leaves junit.xml and
conformance.html for upload, and diffs against the last release's conformance.json: a clean run passes the
gate, a regression against the last release fails it."""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
from pathlib import Path

from cli_runs import REFERENCE_KEY

ROOT = Path(__file__).resolve().parent.parent
GATE = ROOT / "examples" / "ci" / "gate.sh"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _gate(work: Path, port: int, last_release: Path | None = None) -> subprocess.CompletedProcess[str]:
    cli = f"{shlex.quote(sys.executable)} -m conformance.cli"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SGP_", "PYTEST_"))}
    env.update({
        "SGP_BASE_URL": f"http://127.0.0.1:{port}", "SGP_API_KEY": REFERENCE_KEY,
        # the server under test: the reference server, started and stopped by the script
        "SERVER_CMD": f"exec {cli} serve --port {port} --quiet",
        "SGP_CONFORMANCE": str(Path(sys.executable).parent / "sgp-conformance"),
        "SGP_RUN_ARGS": "--depth smoke", "WAIT_SECONDS": "60",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
    })
    if last_release is not None:
        env["LAST_RELEASE"] = str(last_release)
    # hang guard only: a smoke run takes seconds
    return subprocess.run(["bash", str(GATE)], cwd=work, env=env, capture_output=True, text=True, timeout=240)


def test_the_gate_script_passes_a_conformant_server_and_fails_a_regression(tmp_path: Path) -> None:
    port = _free_port()
    first = _gate(tmp_path, port)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    artifacts = tmp_path / "artifacts"
    assert {p.name for p in artifacts.iterdir()} >= {"junit.xml", "conformance.html", "conformance.json"}
    assert "nothing to compare with" in first.stdout and REFERENCE_KEY not in first.stdout + first.stderr
    # the last release passed a MUST requirement this run leaves out: lost coverage, a regression of the gate
    release = json.loads((artifacts / "conformance.json").read_text(encoding="utf-8"))
    left_out = next(r for r in release["results"] if r["level"] == "MUST" and r["status"] == "not run")
    left_out["status"] = "pass"
    (tmp_path / "last-release").mkdir()
    (tmp_path / "last-release" / "conformance.json").write_text(json.dumps(release), encoding="utf-8")
    second = _gate(tmp_path, port, tmp_path / "last-release" / "conformance.json")
    assert second.returncode == 1, second.stdout[-3000:] + second.stderr[-3000:]
    assert f"{left_out['id']} MUST pass -> not run" in second.stdout
    assert "a regression against" in second.stderr
    # the server under test was stopped with the script
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0
