"""The wheel: schemas and the contract page ship inside it and are found without the source tree; its server
and suite work."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_runs import clean_environment
from session_once import shared_directory

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = sorted(p.name for p in (ROOT / "schemas").glob("*.json"))


def built_wheel(tmp_path_factory: pytest.TempPathFactory, config: pytest.Config) -> Path:
    """The project's wheel, built once per test session however many xdist workers ask: pip builds in the
    source tree (build/, *.egg-info), and two builds at once there fail. The first worker builds under the
    lock of the directory all workers share; the others wait for it and take its wheel."""
    with shared_directory("wheel", tmp_path_factory, config) as (work, _):
        if not any(work.glob("sgp_conformance-*.whl")):
            subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", *_isolation(), "-w", str(work),
                            str(ROOT)], check=True, timeout=600, capture_output=True)
        return next(work.glob("sgp_conformance-*.whl"))


def _isolation() -> list[str]:
    """pip's `--no-build-isolation` where this environment already holds what pyproject.toml's build-system
    requires (tox's, seeded by uv with setuptools and wheel): pip then builds with them instead of first
    installing them into an environment of its own (about 4 s of CPU); elsewhere, an isolated build."""
    import tomllib
    from importlib.metadata import PackageNotFoundError, version

    from packaging.requirements import Requirement

    requires = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["build-system"]["requires"]
    try:
        held = all(Requirement(r).specifier.contains(version(Requirement(r).name)) for r in requires)
    except PackageNotFoundError:
        held = False
    return ["--no-build-isolation"] if held else []


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Iterator[Path]:
    """The package as a wheel installs it, in a directory of its own, away from the source tree."""
    wheel = built_wheel(tmp_path_factory, pytestconfig)
    target = tmp_path_factory.mktemp("wheel") / "site"
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        zf.extractall(target)
    assert {f"conformance/schemas/{n}" for n in SCHEMAS} <= set(names)
    # of docs/, the one page the package reads (the HTML report quotes it), and nothing else
    assert sorted(n for n in names if n.startswith("conformance/docs/")) == [
        "conformance/docs/__init__.py", "conformance/docs/contract.md"]
    assert not any(n.startswith(("tests/", "schemas/", "docs/")) for n in names)
    yield target


def run_from(site: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = clean_environment()
    env["PYTHONPATH"] = str(site)
    # run outside the checkout, so nothing can come from the source tree
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout, env=env,
                          cwd=site.parent)


def test_schemas_load_from_the_wheel(installed: Path) -> None:
    code = ("import conformance, conformance.contract.schema_store as s; "
            "print(conformance.__file__); print(sorted(s.load(n)['$id'] for n in s.SCHEMA_NAMES))")
    done = run_from(installed, "-c", code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(str(installed)), done.stdout
    assert "chat-completion.json" in done.stdout


def test_the_report_quotes_the_contract_from_the_wheel(installed: Path) -> None:
    code = ("from importlib import resources; from conformance.contract import document; "
            "from conformance.report.html import contract_html; "
            "print(resources.files(document.PACKAGE).joinpath(document.FILE)); "
            "print(contract_html('docs/contract.md#auth-status'))")
    done = run_from(installed, "-c", code)
    assert done.returncode == 0, done.stderr
    where, shown = done.stdout.split("\n", 1)
    assert where == str(installed / "conformance" / "docs" / "contract.md")
    assert "<blockquote class='sgp-contract'><p><strong>Refusing a missing, empty or wrong key.</strong>" in shown


@pytest.mark.parametrize("profile", ["sgp", "openai"])
def test_installed_suite_passes_against_installed_server(installed: Path, profile: str) -> None:
    done = run_from(installed, "-m", "conformance.cli", "run", "--profile", profile, "--depth", "smoke",
                    "--report-dir", str(installed.parent / f"reports-{profile}"))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "CONFORMANT" in done.stdout
