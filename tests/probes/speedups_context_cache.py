"""Probe for tests/test_prefect_context_cache.py: the settings context serialized and rebuilt,
with a cache hit, a caller's mutation and other settings; prints what it saw as JSON."""

import json

import prefect.context as c
import prefect.flow_engine as fe
from prefect.settings import PREFECT_API_URL, Settings, temporary_settings

ctx = c.SettingsContext.get()
first, again = ctx.serialize(), ctx.serialize()
first["settings"]["api"]["url"] = "mutated by a caller"  # a copy each time: the cache is untouched
third = ctx.serialize()
plain = Settings(**third["settings"])  # what Prefect builds by itself
a, b = c.SettingsContext(**third), c.SettingsContext(**third)
with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:2/api"}):
    other = c.SettingsContext.get().serialize()
    other_built = c.SettingsContext(**other)
print(
    json.dumps(
        {
            "patched": getattr(c.SettingsContext.serialize, "_lab_speedup", False),
            "heartbeat_patched": getattr(fe._send_heartbeats, "_lab_speedup", False),
            "copies_equal": again == third,
            "copy_isolated": third["settings"]["api"]["url"] != "mutated by a caller",
            "rebuilt_once": a.settings is b.settings,
            "same_as_prefect": a.settings == plain,
            "other_url": other["settings"]["api"]["url"],
            "other_built_url": str(other_built.settings.api.url),
            "other_is_new": other_built.settings is not a.settings,
        }
    )
)
