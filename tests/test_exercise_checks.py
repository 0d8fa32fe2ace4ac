"""`./lab check NN` on the real lab: every exercise's solution meets every requirement, and every
untouched starting point does not (with NOT MET lines, not a crash). A learner's mistake (an
unknown exercise, a missing file) is one line and exit 2.

One `./lab check` per file, on the session's embedded lab: each runs the file's flow for real.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from workshop_lab.exercise_checks import SOLUTIONS_DIR, STARTERS_DIR
from workshop_lab.exercise_checks.exercises import EXERCISES

pytestmark = pytest.mark.stack


def solution(number: str) -> Path:
    return SOLUTIONS_DIR / f"{EXERCISES[number].filename.removesuffix('.py')}_solution.py"


def test_every_exercise_has_a_starter_a_solution_and_a_text():
    for number, exercise in EXERCISES.items():
        assert (STARTERS_DIR / exercise.filename).is_file(), number
        assert solution(number).is_file(), number
        text = (STARTERS_DIR.parent / exercise.filename.replace(".py", ".md")).read_text()
        assert f"./lab check {number}" in text and f"flows/mine/{exercise.filename}" in text, number


@pytest.mark.parametrize("number", list(EXERCISES))
def test_the_solution_meets_every_requirement(embedded_lab, number):
    result = embedded_lab.cli("check", number, "--file", str(solution(number)), check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "NOT MET" not in result.stdout and result.stdout.count("  met  ") == len(EXERCISES[number].requirements)


@pytest.mark.parametrize("number", list(EXERCISES))
def test_the_untouched_starting_point_fails_the_check(embedded_lab, number):
    result = embedded_lab.cli("check", number, "--file", str(STARTERS_DIR / EXERCISES[number].filename), check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "NOT MET" in result.stdout and "Traceback" not in result.stdout + result.stderr, (
        result.stdout + result.stderr
    )
    # Every requirement gets its line, met or not.
    lines = [line for line in result.stdout.splitlines() if line.startswith(("  met  ", "  NOT MET"))]
    assert len(lines) == len(EXERCISES[number].requirements), result.stdout
    # ... each saying something about its own requirement: a step that could not run is explained
    # once, and the lines after it that needed it say "(see above)".
    assert not any("could not read it" in line for line in lines), result.stdout
    errors = [line.split(": ", 2)[-1] for line in lines if " could not start: " in line or " failed: " in line]
    assert len(errors) == len(set(errors)), result.stdout


@pytest.mark.parametrize(
    "args, says",
    [
        (("check", "42"), "there is no exercise '42'"),
        (("check", "07", "--file", "flows/mine/does-not-exist.py"), "is not a file"),
    ],
)
def test_a_learner_mistake_is_one_line_and_exit_2(embedded_lab, args, says):
    result = embedded_lab.cli(*args, check=False)
    assert result.returncode == 2, result.stdout + result.stderr
    assert says in result.stdout and len(result.stdout.strip().splitlines()) == 1, result.stdout
    assert "Traceback" not in result.stderr, result.stderr


def test_a_solution_without_its_http_timeout_does_not_pass_02(embedded_lab, tmp_path):
    """The retries check sees the timeout itself: the upstream hangs one request for 3 s, under
    httpx's default timeout, so without `timeout=1` that attempt waits the hang out and succeeds."""
    source = solution("02").read_text()
    assert ", timeout=1)" in source
    mine = tmp_path / "02_retries.py"
    mine.write_text(source.replace(", timeout=1)", ")"))
    result = embedded_lab.cli("check", "02", "--file", str(mine), check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith(("  met  ", "  NOT MET"))]
    assert lines[0].startswith("  NOT MET  1. a request that hangs") and "no attempt failed on a timeout" in lines[0], (
        result.stdout
    )
    assert all(line.startswith("  met  ") for line in lines[1:]), result.stdout
