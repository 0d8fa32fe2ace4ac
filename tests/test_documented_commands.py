"""Every command the course tells a learner to type works as written (against a running lab).

Which text counts as a command to type (the convention the docs follow):
- Markdown (README.md, docs/*.md, flows/exercises/*.md): each line of a ```bash block (a trailing
  `\\` continues it, `#` starts a comment), and each inline `code` span that starts like a command
  (`./lab `, `.venv/bin/`, `curl `, `docker compose `, `cp `).
- A module's header (the docstring of flows/NN_*.py): the same inline spans, and indented lines
  that start like a command.

Each collected command meets the first rule of RULES that matches it: run it from the repo root
in a new learner's shell (nothing exported; the lab's ports only, as `.env` would hold them) and
check its exit code and output, or skip it with the reason written in the rule. A command that
no rule matches fails the test: a new documented command needs its expected outcome here.
Commands that name the lab's default ports (4200, 8700, ...) are pointed at the lab under test.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.test_learner_shell import learner_env
from workshop_lab.stack.settings import FLOWS_DIR, REPO_ROOT

pytestmark = pytest.mark.stack

STARTS_LIKE_A_COMMAND = ("./lab ", ".venv/bin/", "curl ", "docker ", "cp ", "prefect ", "python ")
DOC_FILES = [
    REPO_ROOT / "README.md",
    *sorted((REPO_ROOT / "docs").glob("*.md")),
    *sorted((FLOWS_DIR / "exercises").glob("*.md")),
]
MODULES = sorted(FLOWS_DIR.glob("[0-9][0-9]_*.py"))


@dataclass(frozen=True)
class Expect:
    """Run it: exit `code`, and every string of `shows` in its output."""

    code: int = 0
    shows: tuple[str, ...] = ()


@dataclass(frozen=True)
class Skip:
    reason: str


# --- collecting -------------------------------------------------------------------------------
def _joined(lines: list[str]) -> list[str]:
    """Lines with `\\` continuations joined, comments and blanks dropped."""
    commands, pending = [], ""
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        commands.append(re.sub(r"\s+#\s.*$", "", pending + line).strip())
        pending = ""
    return commands


def _spans(line: str) -> list[str]:
    return [span.strip() for span in re.findall(r"`([^`]+)`", line) if span.startswith(STARTS_LIKE_A_COMMAND)]


def markdown_commands(path: Path) -> list[str]:
    found, block, language = [], None, ""
    for line in path.read_text().splitlines():
        fence = re.match(r"^\s*```(\w*)", line)
        if fence:
            if block is None:
                block, language = [], fence.group(1)
            else:
                found += _joined(block) if language in ("bash", "sh", "shell") else []
                block = None
            continue
        if block is not None:
            block.append(line)
        else:
            found += _spans(line)
    return found


def header_as_written(path: Path) -> str:
    """A module's docstring as the learner reads it in the file (not Python's value of it: `\\` in
    the source is what they copy)."""
    source = path.read_text()
    node = ast.parse(source).body[0]
    if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
        return ""
    return ast.get_source_segment(source, node.value).lstrip("rRuU").strip('"').strip("'")


def module_commands(path: Path) -> list[str]:
    text = header_as_written(path)
    found, lines = [], text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if line.startswith("    ") and stripped.startswith(STARTS_LIKE_A_COMMAND):
            chunk = [stripped]
            while chunk[-1].endswith("\\") and i + 1 < len(lines):
                i += 1
                chunk.append(lines[i].strip())
            found += _joined(chunk)
        else:
            found += _spans(line)
        i += 1
    return found


def documented_commands() -> dict[str, list[str]]:
    """Each command, once, with every place that documents it."""
    places: dict[str, list[str]] = {}
    for path in DOC_FILES:
        for command in markdown_commands(path):
            places.setdefault(command, []).append(str(path.relative_to(REPO_ROOT)))
    for path in MODULES:
        for command in module_commands(path):
            places.setdefault(command, []).append(str(path.relative_to(REPO_ROOT)))
    return places


# --- what each command must do ----------------------------------------------------------------
COMPLETED = Expect(0, ("COMPLETED after",))
RULES: list[tuple[str, Expect | Skip]] = [
    # Commands that start, stop or wipe a lab, or are the suite itself: run by their own tests.
    (
        r"^(\./lab|python lab) (up|down|reset)\b",
        Skip("starts, stops or wipes the lab: tests/test_embedded_stack.py and the fixtures run it"),
    ),
    (r"^\./lab test\b", Skip("the test suite itself")),
    (r"^docker |--docker\b", Skip("the Docker lab: tests/test_compose_stack.py drives the same compose file")),
    (
        r"airbyte[-_]platform|--profile airbyte|AIRBYTE_URL=",
        Skip("needs the Airbyte platform, whose images cannot be pulled here"),
    ),
    (r"bench/", Skip("a benchmark: minutes of work whose figures are reported, not tested")),
    (
        r"^prefect server start|^prefect deploy$",
        Skip("names Prefect's own command in a sentence about Prefect, not a step for the learner"),
    ),
    (
        r"\bNN\b|\bPATH\b|FLOW/DEPLOYMENT|\[SERVICE\]|SCHEDULE_ID|DEPLOYMENT_ID|weather-window|weather-watch",
        Skip("a template, or an exercise's own deployment: tests/test_exercise_checks.py runs the exercises"),
    ),
    (
        r"flows/mine/|^mkdir -p flows/mine",
        Skip("the learner's own file: tests/test_exercise_checks.py checks every starting point and solution"),
    ),
    (r"^cp \.env\.example \.env$", Skip("would overwrite a learner's .env; tests/test_config.py checks .env.example")),
    (r"^\./lab logs\b.*-f\b", Skip("follows the logs until Ctrl-C")),
    (
        r"^\./lab chaos kill\b",
        Skip(
            "crashes a service of the lab on purpose: tests/test_recovery.py and tests/test_watchdog.py kill each one and watch it come back"
        ),
    ),
    (
        r"^\.venv/bin/pip install|^\.venv/bin/python flows/09_docker_packaging\.py$",
        Skip(
            "installs lab_toolkit into the lab's venv (module 09's step before the script): tests/course/test_09_docker_packaging.py builds and runs the package"
        ),
    ),
    (r"\brm\b", Skip("deletes part of the lab's state (the instructor guide's reset of one module)")),
    # A learner's first `./lab check NN`: no file of theirs yet, and the line says how to start one.
    (r"^\./lab check \d\d$", Expect(2, ("does not exist yet", "cp flows/exercises/starters/"))),
    (r"^\./lab check \d\d --file flows/exercises/solutions/", Expect(0, ("requirements met",))),
    # Runs that fail, or are refused, on purpose.
    (r"^\./lab run notifications/notifications --param fail=true$", Expect(1, ("FAILED after",))),
    (r"^\./lab run retries/retries --param page_size=600$", Expect(1, ("FAILED after",))),
    (r"^\./lab run parameters/parameters --param city=Atlantis$", Expect(2, ("refuses these parameters",))),
    (
        r"^\./lab run docker-packaging/",
        Skip("runs on the packaging profile's worker (Docker): tests/course/test_09_docker_packaging.py"),
    ),
    (r"^\./lab run ", COMPLETED),
    (r"^\./lab (status|doctor|deploy|settings|env)\b", Expect(0)),
    (r"^\./lab logs\b", Expect(0, ("=====",))),
    (r"^curl ", Expect(0)),
    (r"^grep ", Expect(0)),
    (r"^\./lab sql ", Expect(0, ("│",))),
    (r"^\.venv/bin/python flows/01_plain_python_pipeline\.py$", Expect(0, ("TOTAL REVENUE",))),
    (r"^(PREFECT_\w+=\S+ )?\.venv/bin/python (flows/\d\d_\w+\.py|-c .*)$", Expect(0)),
    (r"^\.venv/bin/prefect ", Expect(0)),
]


def rule_for(command: str) -> Expect | Skip | None:
    return next((outcome for pattern, outcome in RULES if re.search(pattern, command)), None)


def test_every_documented_command_has_an_expected_outcome():
    unknown = {command: places for command, places in documented_commands().items() if rule_for(command) is None}
    assert not unknown, f"documented commands with no rule in RULES: {unknown}"


COMMANDS = sorted(documented_commands().items())
# Commands that change what others see (the upstream's chaos, the deployments, the exercise
# checks' own chaos and blocks) run one at a time, the upstream calmed after each; the rest (runs
# and scripts, which only read a calm upstream and write their own runs) run three at a time: the
# lab's worker runs flow runs side by side, as in a class.
ALONE = re.compile(r"^curl |^\./lab (deploy|check)\b|flow-run delete")
# Commands that read what the runs left (module 07's cached results, the warehouse): after them.
AFTER = re.compile(r"^grep |^\./lab sql ")
AT_ONCE = 3
# The runs that take a minute or more (LAB_TEST_ARTIFACTS/documented-commands-seconds.json): the
# Dask modules, the ELT pipeline, the subflows, resources-going-down.
SLOW = re.compile(r"dask|08_dask|elt/elt|resources-going-down|flow-of-flows|10_subflows|negative-engineering")


@dataclass
class Ran:
    result: subprocess.CompletedProcess
    seconds: float


def as_typed_here(command: str, lab) -> str:
    """The command as the learner types it, pointed at the lab under test: its ports for the
    default ones, its state folder for the default `.lab/`."""
    typed = command
    for default, setting in (
        ("4200", "PREFECT_PORT"),
        ("8786", "DASK_SCHEDULER_PORT"),
        ("8787", "DASK_DASHBOARD_PORT"),
        ("8700", "UPSTREAM_PORT"),
        ("8701", "INBOX_PORT"),
    ):
        typed = typed.replace(f"localhost:{default}", f"localhost:{lab.env[setting]}")
    return re.sub(r"(?<![\w/])\.lab/", f"{lab.home}/", typed)


def to_run(command: str) -> bool:
    outcome = rule_for(command)
    mine = (
        command.startswith("./lab check")
        and "--file" not in command
        and any((FLOWS_DIR / "mine").glob(f"{command[-2:]}_*.py"))
    )
    return isinstance(outcome, Expect) and not mine


@pytest.fixture(scope="module")
def ran(embedded_lab) -> dict[str, Ran]:
    """Every command that a rule says to run, run once in a new learner's shell from the repo root."""
    import time
    from concurrent.futures import ThreadPoolExecutor

    from workshop_lab.stack.settings import LabConfig
    from workshop_lab.stack.shell import shell_environment

    # What the guide has the class do before its runs: module 07's Secret block.
    env = {**os.environ, **shell_environment(LabConfig.load(embedded_lab.env))}
    code = "from prefect.blocks.system import Secret; Secret(value='s3cr3t').save('upstream-api-token', overwrite=True)"
    subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, timeout=120)

    ports = {
        k: embedded_lab.env[k]
        for k in ("PREFECT_PORT", "DASK_SCHEDULER_PORT", "DASK_DASHBOARD_PORT", "UPSTREAM_PORT", "INBOX_PORT")
    }
    shell = learner_env(ports, embedded_lab.home)

    def run(command: str) -> Ran:
        started = time.monotonic()
        result = subprocess.run(
            as_typed_here(command, embedded_lab),
            shell=True,
            cwd=REPO_ROOT,
            env=shell,
            capture_output=True,
            text=True,
            timeout=600,
        )
        return Ran(result, time.monotonic() - started)

    commands = [command for command, _ in COMMANDS if to_run(command)]
    done: dict[str, Ran] = {}
    for command in (c for c in commands if ALONE.search(c)):
        done[command] = run(command)
        httpx.post(f"{embedded_lab.upstream_url}/chaos/reset", timeout=30).raise_for_status()
    with ThreadPoolExecutor(AT_ONCE) as pool:
        rest = [c for c in commands if not ALONE.search(c) and not AFTER.search(c)]
        rest.sort(key=lambda c: not SLOW.search(c))  # the longest first: no long run starts last
        done.update(zip(rest, pool.map(run, rest), strict=True))
    done.update((command, run(command)) for command in commands if AFTER.search(command))
    # Where the fixture's minutes go: each command's seconds, slowest first.
    artifacts = Path(os.environ.get("LAB_TEST_ARTIFACTS", "/tmp/lab-test-artifacts"))
    artifacts.mkdir(parents=True, exist_ok=True)
    timings = sorted(((round(r.seconds, 1), c) for c, r in done.items()), reverse=True)
    (artifacts / "documented-commands-seconds.json").write_text(json.dumps(timings, indent=1))
    return done


@pytest.mark.parametrize(("command", "places"), COMMANDS, ids=[c for c, _ in COMMANDS])
def test_documented_command_works_as_written(ran, command, places):
    outcome = rule_for(command)
    if isinstance(outcome, Skip):
        pytest.skip(outcome.reason)
    assert outcome is not None, f"no rule for {command!r}"
    if command not in ran:
        pytest.skip(
            "flows/mine/ holds your own file for this exercise: the command checks it, not a fresh learner's state"
        )
    result, seconds = ran[command].result, ran[command].seconds
    output = result.stdout + result.stderr
    where = f"{command!r} (documented in {', '.join(sorted(set(places)))}; {seconds:.0f}s)"
    assert result.returncode == outcome.code, f"{where} exited {result.returncode}\n{output[-3000:]}"
    for shown in outcome.shows:
        assert shown in output, f"{where} did not show {shown!r}\n{output[-3000:]}"
    assert "Traceback" not in result.stderr or outcome.code != 0, (
        f"{where} printed a traceback\n{result.stderr[-3000:]}"
    )
