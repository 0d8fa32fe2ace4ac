"""Probe for tests/test_prefect_dask_speedups.py: blocks dumped with secrets, patched and then with
the patches switched off in the same process, with each JSON schema build counted; prints JSON."""

import json

from prefect.blocks.core import Block
from prefect.blocks.system import Secret
from prefect.filesystems import LocalFileSystem

from workshop_lab import prefect_speedups

schema_builds = []
for cls in (LocalFileSystem, Secret):
    original = cls.model_json_schema.__func__

    def counted(klass, *args, _original=original, **kwargs):
        schema_builds.append(klass.__name__)
        return _original(klass, *args, **kwargs)

    cls.model_json_schema = classmethod(counted)


def dumps():
    blocks = (LocalFileSystem(basepath="/tmp/results"), Secret(value="s3cret"), Secret(value="other"))
    return [block.model_dump(mode="json", context={"include_secrets": True}) for block in blocks]


is_patched = getattr(Block._field_has_secrets, "_lab_speedup", False)
patched = dumps()
patched_again = dumps()
builds_patched = len(schema_builds)
prefect_speedups.set_applied(False)
schema_builds.clear()
stock = dumps()
builds_stock = len(schema_builds)
print(
    json.dumps(
        {
            "patched": is_patched,
            "switched_off": not getattr(Block._field_has_secrets, "_lab_speedup", False),
            "same_as_prefect": patched == stock == patched_again,
            "dump": patched,
            "builds_patched": builds_patched,
            "builds_stock": builds_stock,
        }
    )
)
