"""The layout keeps its promises: flows reach into the lab's package only through its toolkit, and no
folder of the repo stands in for an installed package.

- Every file under flows/ (the course modules, the exercises' starting points and solutions, the
  packaging example) imports from `workshop_lab` only `workshop_lab.flow_tools` (the warehouse lock,
  the Airbyte client). Everything else in the package is the stack or code loaded into every process:
  a flow that imports it ties what learners read to the lab's internals. The standard library,
  Prefect and the installed libraries are free to import.
- The repo root is on the lab venv's sys.path (its `.pth` line, written by `./lab` and by
  images/lab/Dockerfile), so each top-level folder is importable there by its name. None may be the
  import name of a distribution of that venv, and the Airbyte venv, where `airbyte` is PyAirbyte's
  package, must not have the repo on its sys.path at all (the lab's `airbyte/` folder would stand in
  for PyAirbyte when it is not installed).
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from workshop_lab.stack.settings import FLOWS_DIR, REPO_ROOT

LAB_PACKAGE = "workshop_lab"
FLOW_TOOLKIT = "workshop_lab.flow_tools"
# The learner's own copies (flows/mine/, git-ignored) and build output are not the lab's files.
NOT_SHIPPED = {"mine", "build"}
FLOW_SOURCES = sorted(
    path
    for path in FLOWS_DIR.rglob("*.py")
    if not NOT_SHIPPED & set(path.relative_to(FLOWS_DIR).parts) and ".egg-info" not in str(path)
)
# The packaging example's own package (flows/packaging/<project>/src/<package>): imported by name
# once pip-installed (images/flows/Dockerfile), whether or not this venv has it.
EXAMPLE_PACKAGES = {path.name for path in FLOWS_DIR.glob("packaging/*/src/*") if path.is_dir()}
AIRBYTE_PYTHON = REPO_ROOT / ".venv-airbyte" / "bin" / "python"


# --- flows import only the toolkit ---------------------------------------------------------------
def imported_modules(source: str) -> list[tuple[int, str]]:
    """(line, module) for every import in `source`, at any depth (inside functions too): `import a.b`
    gives a.b, `from a import b` gives a.b (b may be a module), and importlib.import_module("a.b") /
    __import__("a.b") with a literal name give a.b. Relative imports are the file's own package: skipped."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
        elif (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and (
                getattr(node.func, "attr", None) == "import_module"
                or getattr(node.func, "id", None) in ("import_module", "__import__")
            )
        ):
            found.append((node.lineno, node.args[0].value))
    return sorted(found)


def installed_import_names() -> set[str]:
    """Top-level import names of the distributions installed in this venv (the lab's)."""
    return set(importlib.metadata.packages_distributions())


def forbidden_imports(source: str, allowed_top_level: set[str]) -> list[str]:
    """The imports of `source` that break the rule, as 'line N: module (why)'."""
    broken = []
    for line, module in imported_modules(source):
        top = module.split(".")[0]
        if top == LAB_PACKAGE:
            if not (module == FLOW_TOOLKIT or module.startswith(FLOW_TOOLKIT + ".")):
                broken.append(f"line {line}: {module} (the lab's package is open to flows only as {FLOW_TOOLKIT})")
        elif top not in allowed_top_level:
            broken.append(f"line {line}: {module} (neither the standard library nor an installed library)")
    return broken


@pytest.fixture(scope="module")
def allowed_top_level() -> set[str]:
    return {*sys.stdlib_module_names, "__future__", *installed_import_names(), *EXAMPLE_PACKAGES} - {LAB_PACKAGE}


@pytest.mark.parametrize("path", FLOW_SOURCES, ids=lambda p: str(p.relative_to(FLOWS_DIR)))
def test_flow_files_import_only_the_lab_toolkit_and_libraries(path: Path, allowed_top_level):
    broken = forbidden_imports(path.read_text(), allowed_top_level)
    assert not broken, f"flows/{path.relative_to(FLOWS_DIR)} imports what flows may not:\n" + "\n".join(broken)


def test_the_import_rule_catches_the_stack_a_repo_folder_and_a_nested_or_dynamic_import(allowed_top_level):
    """The checker itself: these lines each break the rule, wherever they stand; the toolkit does not."""
    source = (
        "import prefect\n"
        "from workshop_lab.flow_tools.warehouse import writer_lock\n"
        "from workshop_lab import flow_tools\n"
        "from workshop_lab.stack.settings import FLOWS_DIR\n"  # 4: the stack
        "def run() -> None:\n"
        "    import workshop_lab.stack.settings\n"  # 6: inside a function
        "    from workshop_lab import course_services\n"  # 7: a sibling of flow_tools
        "    importlib.import_module('workshop_lab.prefect_speedups')\n"  # 8: by name
        "import workshop_lab\n"  # 9: the whole package
        "from tests.lab_api import LabApi\n"  # 10: the repo's tests
    )
    broken = forbidden_imports(source, allowed_top_level)
    assert [b.split(":")[0] for b in broken] == [f"line {n}" for n in (4, 6, 7, 8, 9, 10)], broken
    assert "workshop_lab.stack.settings.FLOWS_DIR" in broken[0], broken


def test_every_flow_folder_is_checked():
    folders = {
        path.relative_to(FLOWS_DIR).parts[0] if len(path.relative_to(FLOWS_DIR).parts) > 1 else "."
        for path in FLOW_SOURCES
    }
    assert folders == {".", "exercises", "packaging"}, folders
    assert any(p.parent.name == "starters" for p in FLOW_SOURCES) and any(
        p.parent.name == "solutions" for p in FLOW_SOURCES
    )


# --- no repo folder shadows an installed package --------------------------------------------------
def repo_folders() -> set[str]:
    """What the repo root on sys.path makes importable: every top-level folder (a namespace package
    even without __init__.py) and top-level module."""
    return {
        p.name if p.is_dir() else p.stem
        for p in REPO_ROOT.iterdir()
        if (p.is_dir() or p.suffix == ".py") and (p.stem if p.suffix == ".py" else p.name).isidentifier()
    }


def locked_names(lock: Path) -> set[str]:
    """The distributions a lock pins, as the import name most of them use (PyAirbyte: `airbyte`)."""
    return {
        m.group(1).lower().replace("-", "_").replace(".", "_")
        for m in re.finditer(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", lock.read_text(), re.MULTILINE)
    }


def test_no_repo_folder_is_an_import_name_of_the_lab_venv():
    names = installed_import_names() | locked_names(REPO_ROOT / "requirements-dev.lock")
    shadowing = sorted(repo_folders() & names)
    assert not shadowing, f"top-level folders {shadowing} stand in for installed packages on the lab venv's sys.path"


AIRBYTE_VENV_VIEW = """
import importlib.util, json, sys
names = json.loads(sys.argv[1])
found = {}
for name in names:
    spec = importlib.util.find_spec(name)
    found[name] = None if spec is None else [*(spec.submodule_search_locations or []), spec.origin or ""]
print(json.dumps({"sys_path": sys.path, "found": found}))
"""


def repo_folders_the_airbyte_venv_finds(env: dict[str, str], cwd: Path) -> dict[str, list[str]]:
    """The repo folders that an Airbyte-venv process started with `env` imports from the repo: each
    folder whose name is one of that venv's import names (installed, or pinned by either of its
    locks, PyAirbyte's too), with where it was found."""
    names = sorted(
        repo_folders()
        & (
            locked_names(REPO_ROOT / "airbyte" / "requirements.lock")
            | locked_names(REPO_ROOT / "airbyte" / "pyairbyte.lock")
        )
    )
    assert "airbyte" in names  # PyAirbyte's import name is a folder of the repo: the case to guard
    done = subprocess.run(
        [str(AIRBYTE_PYTHON), "-c", AIRBYTE_VENV_VIEW, json.dumps(names)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)["found"]
    inside = str(REPO_ROOT.resolve())
    return {
        name: where
        for name, where in found.items()
        if where and any(w and str(Path(w).resolve()).startswith(inside) for w in where)
    }


@pytest.mark.skipif(not AIRBYTE_PYTHON.exists(), reason="no Airbyte venv (./lab up makes .venv-airbyte/)")
def test_the_airbyte_venv_imports_nothing_from_the_repo(tmp_path):
    """As the elt flow starts it (its environment, another working directory): `airbyte` is
    PyAirbyte or nothing, never the lab's airbyte/ folder. With the repo on PYTHONPATH (the image
    before this test) the folder is found: the check sees it."""
    assert repo_folders_the_airbyte_venv_finds(dict(os.environ), tmp_path) == {}
    shadowed = repo_folders_the_airbyte_venv_finds({**os.environ, "PYTHONPATH": str(REPO_ROOT)}, tmp_path)
    assert "airbyte" in shadowed, shadowed


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    logical, current = [], ""
    for line in text.splitlines():
        if line.lstrip().startswith("#") and not current:
            continue
        current += line.rstrip().removesuffix("\\") + " "
        if not line.rstrip().endswith("\\"):
            if current.strip():
                word, _, rest = current.strip().partition(" ")
                logical.append((word.upper(), rest.strip()))
            current = ""
    return logical


def repo_on_every_python_path(dockerfile: str) -> list[str]:
    """Where the image would put the repo on the sys.path of every interpreter, the Airbyte venv's too."""
    return [
        f"{word} {args}"
        for word, args in dockerfile_instructions(dockerfile)
        if word == "ENV" and re.search(r"(^|\s)PYTHONPATH[=\s]", args)
    ]


def test_the_lab_image_puts_the_repo_on_the_lab_venvs_path_only():
    dockerfile = (REPO_ROOT / "images" / "lab" / "Dockerfile").read_text()
    assert repo_on_every_python_path(dockerfile) == []
    pth_steps = [args for word, args in dockerfile_instructions(dockerfile) if word == "RUN" and ".pth" in args]
    assert len(pth_steps) == 1 and "/opt/lab\\n" in pth_steps[0] and "/opt/venv/lib/" in pth_steps[0], pth_steps
    assert "PYTHONPATH" not in (REPO_ROOT / "docker-compose.yml").read_text()
    # The check itself, on the ENV the image had: PYTHONPATH=/opt/lab reached the Airbyte venv.
    before = "ENV PYTHONUNBUFFERED=1 \\\n    PATH=/opt/venv/bin:$PATH \\\n    PYTHONPATH=/opt/lab\n"
    assert len(repo_on_every_python_path(before)) == 1
