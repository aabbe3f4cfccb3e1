"""scripts/precision.py runs and reports: the full measurement (20 seeds x 2 profiles) is run by hand."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "precision.py"


def test_precision_script_reports_passed_and_failed(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "--runs", "1", "--first-seed", "7", "--profiles", "openai",
                           "--depth", "smoke", "--no-controls"], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1] == "1 passed, 0 failed"


def test_recall_of_a_variant_is_reported(tmp_path: Path) -> None:
    # a control and a mutant through the same code path as the full measurement, one seed each
    done = subprocess.run([sys.executable, str(SCRIPT), "--runs", "1", "--profiles", "sgp", "--depth", "smoke",
                           "--recall", "sem_created_ms"], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SEM-003:fail" in done.stdout and done.stdout.splitlines()[-1] == "1 passed, 0 failed"
    assert "Traceback" not in done.stdout + done.stderr
