"""The log (folds on CI, progress lines by hand) and the shape of messages: tool tracebacks
cut, pytest counts read, URLs shown without their credentials."""

from __future__ import annotations

import io

import pytest

from multibuild import log
from multibuild.engine.testing import pytest_counts
from multibuild.util.cmd import excerpt
from multibuild.util.urls import hide_userinfo


@pytest.mark.parametrize(
    ("ci", "start", "end"),
    [
        ("github", "::group::step one", "::endgroup::"),
        ("travis", "travis_fold:start:step_one", "travis_fold:end:step_one"),
        (None, "==> step one", "step one: done"),
    ],
)
def test_groups_fold_on_ci(ci: str | None, start: str, end: str) -> None:
    out = io.StringIO()
    logger = log.Logger(stream=out, ci=ci)
    with logger.group("step one"):
        logger.output("compiler output")
    text = out.getvalue()
    assert start in text and end in text
    # By hand, command output goes to the log only; on CI it is shown inside the fold.
    assert ("compiler output" in text) == bool(ci)


def test_progress_keeps_the_progress_mark() -> None:
    """pytest's percentage ends a line of dots longer than the progress line: it stays."""
    out = io.StringIO()
    logger = log.Logger(stream=out)
    logger.output("." * 40 + "F" + "." * 39 + " [ 24%]")
    logger.progress("tests", 30.0)
    shown = out.getvalue().rstrip("\n").split("tests: 30.0s ", 1)[1]
    assert shown.endswith("... [ 24%]") and len(shown) == 70
    # ninja's mark leads its line: the line is cut at its end.
    cut = log.shorten("[498/1259] Compiling C++ object " + "x" * 80)
    assert cut.startswith("[498/1259] Compiling C++ object x") and cut.endswith("x...")
    assert log.shorten("short [ 5%]") == "short [ 5%]"


def test_progress_lines_when_quiet() -> None:
    out = io.StringIO()
    logger = log.Logger(stream=out)
    logger.output("[120/911] Compiling C object foo.o")
    logger.progress("build", 95.0)
    assert "... build: 1m35s [120/911] Compiling C object foo.o" in out.getvalue()


def test_excerpt_drops_tool_tracebacks() -> None:
    output = "\n".join(
        [
            "INFO: repairing",
            "Traceback (most recent call last):",
            '  File "x.py", line 1, in <module>',
            "    main()",
            "ValueError: Cannot repair wheel, because required library libhello.so.1 could not "
            "be located",
        ]
    )
    text = excerpt(output)
    assert "Traceback" not in text and "File" not in text
    assert text.splitlines() == [
        "    INFO: repairing",
        "    ValueError: Cannot repair wheel, "
        "because required library libhello.so.1 could not be located",
    ]


def test_pytest_counts() -> None:
    assert pytest_counts(
        "....\n== 69876 passed, 2 skipped, 30 deselected, 1 xfailed in 768.1s =="
    ) == {"passed": 69876, "skipped": 2, "deselected": 30, "xfailed": 1}
    assert pytest_counts("1 failed, 3 passed, 2 errors in 1.0s") == {
        "failed": 1,
        "passed": 3,
        "errors": 2,
    }
    assert pytest_counts("no summary") == {}


def test_urls_are_shown_without_credentials() -> None:
    assert hide_userinfo("https://user:tok@github.com/x.git") == "https://***@github.com/x.git"
    assert hide_userinfo("/local/path") == "/local/path"
