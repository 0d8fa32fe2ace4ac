"""Prefect-on-Dask's per-task cost, cut where the profile puts it: the settings context.

For every task run a flow submits to Dask, Prefect 3.9 ships the flow's settings along with it.
In the flow process it serializes the whole `SettingsContext` (every setting, secrets rendered,
paths visited); on the Dask worker it builds a new `Settings` from that dict, which runs
pydantic-settings' sources again (environment variables, `.env` and TOML files looked up for every
nested settings model). bench/dask_overhead.py's profile of a no-op task run: about 85% of the
worker's time is that rebuild, and most of the flow process's per-submit time is the serialization.

Settings are frozen, and a flow submits the same settings with every task run. So this module
- serializes each `SettingsContext` once per process (keyed by the settings object it holds: a new
  object, e.g. inside `temporary_settings`, is serialized anew), handing out copies;
- builds one `Settings` per distinct serialized form in each worker process (keyed by its JSON),
  the same object Prefect would build from the same dict in the same process.
Nothing else changes. Prefect's maintainers took the same two steps for their process-pool runner
(PrefectHQ/prefect#20853). `LAB_PREFECT_CONTEXT_CACHE=0` turns it off (`LAB_PREFECT_SPEEDUPS=0`,
every speed-up: bench/dask_overhead.py measures Prefect with and without them).

It is installed by the lab venvs' `.pth` line (workshop_lab/prefect_speedups/__init__.py), as an import
hook: nothing is imported until `prefect.context` is.
"""

from __future__ import annotations

import copy
import functools
import json
import os
from collections import OrderedDict
from typing import Any

from workshop_lab.prefect_speedups import replace

CACHE_SIZE = 16


class _Lru(OrderedDict):
    def remember(self, key, value):
        self[key] = value
        self.move_to_end(key)
        while len(self) > CACHE_SIZE:
            self.popitem(last=False)
        return value


def enabled() -> bool:
    return os.environ.get("LAB_PREFECT_CONTEXT_CACHE", "1") != "0"


def patch(module) -> None:
    cls = module.SettingsContext
    from prefect.settings import Settings

    serialized_cache: _Lru = _Lru()  # (id(settings), include_secrets) -> (settings, serialized)
    built_cache: _Lru = _Lru()  # JSON of a serialized settings dict -> Settings
    original_serialize, original_init = cls.serialize, cls.__init__

    @functools.wraps(original_serialize)
    def serialize(self, include_secrets: bool = True) -> dict[str, Any]:
        key = (id(self.settings), include_secrets)
        hit = serialized_cache.get(key)
        if hit is None or hit[0] is not self.settings:  # keep the object: its id is never reused meanwhile
            hit = serialized_cache.remember(
                key, (self.settings, original_serialize(self, include_secrets=include_secrets))
            )
        return copy.deepcopy(hit[1])

    @functools.wraps(original_init)
    def __init__(self, *args, **data):
        settings = data.get("settings")
        if isinstance(settings, dict):
            key = json.dumps(settings, sort_keys=True, default=str)
            built = built_cache.get(key)
            if built is None:
                built = built_cache.remember(key, Settings(**settings))
            data["settings"] = built
        original_init(self, *args, **data)

    for name, wrapper in (("serialize", serialize), ("__init__", __init__)):
        replace(cls, name, wrapper)
