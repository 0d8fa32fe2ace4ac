"""Every flow file a learner opens keeps the course's promises: it imports, it explains itself,
it runs as a script (a top-level `if __name__ == "__main__":` block that calls its flow), its
parameters are typed, and every task that calls the network says how it retries.

Loads each file under flows/ (and the exercises' solutions and starting points) by path, the file
path as test id. A starting point keeps every promise but the retry policy: adding it is the exercise.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import re
import sys
from pathlib import Path

import pytest
from prefect import Flow
from prefect.tasks import Task

from workshop_lab.stack.settings import FLOWS_DIR

FLOW_FILES = sorted(
    [
        *FLOWS_DIR.glob("[0-9][0-9]_*.py"),
        *FLOWS_DIR.glob("exercises/solutions/*.py"),
        *FLOWS_DIR.glob("exercises/starters/*.py"),
    ]
)
STARTERS = {path for path in FLOW_FILES if path.parent.name == "starters"}
# On purpose without Prefect: the "before" picture of section 1.
PLAIN_PYTHON = {"01_plain_python_pipeline.py"}
NETWORK_CALL = re.compile(r"\b(httpx|requests|urllib|aiohttp)\b|\.get\(f?[\"']https?:|run_deployment\(")


def load(path: Path):
    name = f"lab_flow_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def members(module, kind):
    return [
        obj
        for obj in vars(module).values()
        if isinstance(obj, kind) and getattr(obj.fn, "__module__", None) == module.__name__
    ]


def is_main_guard(test: ast.expr) -> bool:
    """`__name__ == "__main__"` (either way round)."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, *test.comparators]
    return any(isinstance(s, ast.Name) and s.id == "__name__" for s in sides) and any(
        isinstance(s, ast.Constant) and s.value == "__main__" for s in sides
    )


def names_the_main_block_calls(source: str) -> set[str]:
    """The plain names called anywhere inside the module's top-level `if __name__ == "__main__":`
    blocks (`asyncio.run(my_flow())` calls my_flow); empty when there is no such block."""
    called = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.If) and is_main_guard(node.test):
            called |= {
                call.func.id
                for statement in node.body
                for call in ast.walk(statement)
                if isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
            }
    return called


def test_the_main_block_check_wants_a_real_guard_that_calls():
    assert names_the_main_block_calls('if __name__ == "__main__":\n    asyncio.run(my_flow(city="Oslo"))\n') == {
        "my_flow"
    }
    for no_block in (
        'print("__main__")\n',  # a mention is not a block
        '# if __name__ == "__main__":\n#     my_flow()\n',
        'if __name__ != "__main__":\n    my_flow()\n',
        'def f():\n    if __name__ == "__main__":\n        my_flow()\n',  # not at the top level
        'if __name__ == "__main__":\n    pass\n',
    ):
        assert "my_flow" not in names_the_main_block_calls(no_block), no_block


@pytest.mark.parametrize("path", FLOW_FILES, ids=lambda p: str(p.relative_to(FLOWS_DIR)))
def test_flow_file_imports_and_explains_itself(path: Path):
    module = load(path)
    assert (module.__doc__ or "").strip(), f"{path.name} has no header docstring (what you will learn, how to run it)"
    called = names_the_main_block_calls(path.read_text())
    if path.name in PLAIN_PYTHON:
        functions = {
            name for name, obj in vars(module).items() if inspect.isfunction(obj) and obj.__module__ == module.__name__
        }
        assert called & functions, (
            f'{path.name}: its `if __name__ == "__main__":` block calls none of its functions ({sorted(called)})'
        )
        return
    flows = members(module, Flow)
    assert flows, f"{path.name} defines no flow"
    flow_names = {name for name, obj in vars(module).items() if any(obj is f for f in flows)}
    assert called & flow_names, (
        f'{path.name}: no `if __name__ == "__main__":` block that calls one of its flows '
        f"{sorted(flow_names)} (it calls {sorted(called)})"
    )
    for item in [*flows, *members(module, Task)]:
        label = f"{path.name}: {type(item).__name__.lower()} {item.name!r}"
        assert (item.fn.__doc__ or "").strip(), f"{label} has no docstring"
        signature = inspect.signature(item.fn)
        untyped = [p.name for p in signature.parameters.values() if p.annotation is inspect.Parameter.empty]
        assert not untyped, f"{label} has untyped parameters: {untyped}"


@pytest.mark.parametrize(
    "path",
    [p for p in FLOW_FILES if p.name not in PLAIN_PYTHON and p not in STARTERS],
    ids=lambda p: str(p.relative_to(FLOWS_DIR)),
)
def test_tasks_that_call_the_network_have_an_explicit_retry_policy(path: Path):
    module = load(path)
    for task in members(module, Task):
        if NETWORK_CALL.search(inspect.getsource(task.fn)):
            assert task.retries and task.retries > 0, (
                f"{path.name}: task {task.name!r} calls the network but sets no retries=: say how it recovers"
            )


def test_every_deployment_entrypoint_exists():
    import yaml

    config = yaml.safe_load((FLOWS_DIR / "prefect.yaml").read_text())
    for deployment in config["deployments"]:
        file, _, function = deployment["entrypoint"].partition(":")
        module = load(FLOWS_DIR / file)
        assert isinstance(getattr(module, function, None), Flow), (
            f"{deployment['name']}: {deployment['entrypoint']} is not a flow"
        )
