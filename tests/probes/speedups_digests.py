"""Probe for tests/test_speedup_guards.py: the sha256 of the source of each Prefect function, class
or value a lab speed-up replaces or relies on, read from stock Prefect (run it with
LAB_PREFECT_SPEEDUPS=0). Arguments: `module:qualified.name` ...; prints {argument: digest} as JSON."""

import hashlib
import importlib
import inspect
import json
import sys

digests = {}
for target in sys.argv[1:]:
    module_name, qualname = target.split(":")
    obj = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = inspect.getattr_static(obj, part) if inspect.isclass(obj) else getattr(obj, part)
    obj = obj.fget if isinstance(obj, property) else obj
    source = inspect.getsource(obj) if callable(obj) or inspect.isclass(obj) else repr(obj)
    digests[target] = hashlib.sha256(source.encode()).hexdigest()
print(json.dumps(digests))
