"""The suite as a pytest plugin, from a user's own project: the README's example runs from a directory outside
the checkout and writes its reports; in a session that does not ask for the suite the plugin does nothing."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# the README's example against the embedded reference server, word for word
EXAMPLE = ("pytest --pyargs conformance.suite --sgp-depth smoke --sgp-report-dir reports "
           "--html=reports/conformance.html --self-contained-html --junitxml=reports/junit.xml")

PLAIN_TESTS = '''
from conformance.suite.run import STASH_RUN


def test_the_plugin_is_loaded_and_inert(pytestconfig):
    assert pytestconfig.pluginmanager.has_plugin("conformance.plugin")
    assert STASH_RUN not in pytestconfig.stash
'''


def _pytest(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    # no SGP_* settings of the developer's shell, no xdist worker variables of this session
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SGP_", "PYTEST_"))}
    return subprocess.run([sys.executable, "-m", "pytest", *args], capture_output=True, text=True, timeout=300,
                          cwd=cwd, env=env)


def test_the_readme_example_runs_from_a_users_project(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert EXAMPLE in readme
    # a new directory outside the checkout, as a user's project is
    project = tmp_path / "project"
    project.mkdir()
    assert ROOT not in project.parents
    done = _pytest(shlex.split(EXAMPLE)[1:], project)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    reports = project / "reports"
    assert {p.name for p in reports.iterdir()} >= {"conformance.html", "junit.xml", "conformance.json"}
    assert '"embedded": true' in (reports / "conformance.json").read_text(encoding="utf-8")
    assert 'id="sgp-summary"' in (reports / "conformance.html").read_text(encoding="utf-8")
    assert not (project / ".schemathesis").exists()


def test_an_ordinary_session_is_left_alone(tmp_path: Path) -> None:
    (tmp_path / "test_plain.py").write_text(PLAIN_TESTS, encoding="utf-8")
    done = _pytest(["-q", "-p", "no:cacheprovider"], tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "1 passed" in done.stdout
    # no report of the suite, no server announcement
    assert {p.name for p in tmp_path.iterdir()} - {"__pycache__"} == {"test_plain.py"}


def test_suite_tests_collected_by_the_way_are_deselected(tmp_path: Path) -> None:
    # the package's directory holds the suite: given as such, the suite is not what was asked for
    done = _pytest(["-q", "-p", "no:cacheprovider", str(ROOT / "conformance")], tmp_path)
    assert "deselected" in done.stdout and "--pyargs conformance.suite" in done.stdout, done.stdout[-3000:]
    assert done.returncode == 5, done.stdout[-3000:]
    assert not (tmp_path / "reports").exists()


def test_pytest_help_shows_the_options() -> None:
    done = _pytest(["--help"], ROOT)
    assert done.returncode == 0
    assert "--sgp-base-url" in done.stdout and "--sgp-fail-on" in done.stdout


def test_a_missing_key_names_the_pytest_option(tmp_path: Path) -> None:
    done = _pytest(["--pyargs", "conformance.suite", "--sgp-base-url", "http://127.0.0.1:9", "-p",
                    "no:cacheprovider"], tmp_path)
    assert done.returncode != 0
    said = done.stdout + done.stderr
    assert "--sgp-api-key" in said and "--api-key)" not in said.replace("--sgp-api-key", ""), said[-2000:]
