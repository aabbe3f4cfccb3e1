"""Files pytest writes for a run, tidied once written: JUnit carries no hostname and no nameless test case.

pytest's junitxml writes `hostname="<this machine>"` on `<testsuite>` and has no option to leave it out; a
report forwarded outside (a CI artifact, a ticket) should not name the machine that ran it. A test that an
interrupt (Ctrl-C, SIGTERM) stopped in its call leaves a `<testcase time="0.000" />` with neither name nor
outcome, which test views show as a blank row. After pytest wrote the file, both are taken out; nothing else
in the file changes.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conformance.report.folder import write_new

PLUGIN_NAME = "sgp-conformance-report-files"
HOSTNAME = re.compile(r'(<testsuite\b[^>]*?)\s+hostname="[^"]*"')
NAMELESS_CASE = re.compile(r'<testcase time="[^"]*"\s*/>')


def drop_hostname(path: Path) -> None:
    """Take the hostname attribute out of every <testsuite> tag of a JUnit file, and the test cases that have
    only a duration, in place."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return
    tidy = NAMELESS_CASE.sub("", HOSTNAME.sub(r"\1", text))
    if tidy != text:
        write_new(path, tidy.encode("utf-8"))


class NoWriteThroughLinks:
    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Before junitxml and pytest-html open their files (they follow links): a link planted at either
        path since the folder was claimed is removed, so the report replaces it instead of writing through."""
        for option in ("xmlpath", "htmlpath"):
            path = getattr(session.config.option, option, None)
            if path and Path(path).is_symlink():
                Path(path).unlink()


class TidyReportFiles:
    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        # trylast: after junitxml wrote the file in its own pytest_sessionfinish
        xmlpath = getattr(session.config.option, "xmlpath", None)
        if xmlpath:
            drop_hostname(Path(xmlpath))


def register(config: pytest.Config) -> None:
    """On the controller (xdist workers write no JUnit), once per session."""
    if not hasattr(config, "workerinput") and not config.pluginmanager.has_plugin(PLUGIN_NAME):
        config.pluginmanager.register(TidyReportFiles(), PLUGIN_NAME)
        config.pluginmanager.register(NoWriteThroughLinks(), f"{PLUGIN_NAME}-no-links")
