"""A block's secret fields, looked up once per block class instead of on every dump.

`Block.ser_model` (prefect/blocks/core.py) asks `_field_has_secrets(field)` for every field of a
block it dumps with secrets, and `_field_has_secrets` builds the class's whole JSON schema
(pydantic schema generation, about 1 ms) to read its `secret_fields`. On Prefect-on-Dask that
happens for every task run a flow submits: the run context it ships holds the result store, whose
storage block (`LocalFileSystem`) is dumped with secrets.

The answer depends only on the class and the field name, so it is kept per class, and dropped
when the class's pydantic schema object changes (`model_rebuild`). The dump is the same.

Installed by workshop_lab/prefect_speedups/__init__.py once `prefect.blocks.core` loads.
"""

from __future__ import annotations

import functools
import weakref
from typing import Any

from workshop_lab.prefect_speedups import replace


def patch(module) -> None:
    block = module.Block
    original = block._field_has_secrets
    # block class -> (its pydantic core schema object when cached, {field name: has secrets})
    cache: weakref.WeakKeyDictionary[type, tuple[Any, dict[str, bool]]] = weakref.WeakKeyDictionary()

    @functools.wraps(original)
    def _field_has_secrets(self, field_name: str) -> bool:
        cls = type(self)
        schema = getattr(cls, "__pydantic_core_schema__", None)
        entry = cache.get(cls)
        if entry is None or entry[0] is not schema:
            entry = cache[cls] = (schema, {})
        answers = entry[1]
        if field_name not in answers:
            answers[field_name] = original(self, field_name)
        return answers[field_name]

    replace(block, "_field_has_secrets", _field_has_secrets)
