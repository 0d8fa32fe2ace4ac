"""One TLS context per process for Prefect's API clients, instead of one per client.

Prefect 3.9 builds a new `ssl.create_default_context(cafile=...)` in every `PrefectClient` and
`SyncPrefectClient` it constructs, loading the whole CA bundle from disk each time, even when the
API is plain `http://`. It constructs many: per `get_client()`, per block load, and on a Dask
worker per task run (stack-facts.md: about a third of Prefect-on-Dask's per-task cost). Profiled
here, the lab's setup step spent 7.9 s of 27 s in it (about 110 contexts).

This module gives those clients one shared, *verified* context per CA file, built once. It changes
nothing else: when `PREFECT_API_TLS_INSECURE_SKIP_VERIFY` is set, or a caller passes its own
`verify`, Prefect's own code runs as before (the shared context is never handed to code that
mutates it; Prefect only mutates the contexts it makes for the insecure case).

It is installed by a `.pth` line in the lab's venvs (`./lab` and the image write it), as an import
hook: nothing is imported until Prefect's client module is, so plain Python start-up costs nothing.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import ssl
import sys

TARGET = "prefect.client.orchestration"
_MARK = "_lab_shared_tls_context"


@functools.lru_cache(maxsize=8)
def verified_context(cafile: str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=cafile)


def patch(module) -> None:
    """Wrap the two client classes' __init__ so they receive the shared context."""
    import certifi
    from prefect.settings import PREFECT_API_SSL_CERT_FILE, PREFECT_API_TLS_INSECURE_SKIP_VERIFY

    for cls in (module.PrefectClient, module.SyncPrefectClient):
        original = cls.__init__
        if getattr(original, _MARK, False):
            continue

        @functools.wraps(original)
        def __init__(self, *args, __original=original, httpx_settings=None, **kwargs):
            settings = dict(httpx_settings or {})
            if "verify" not in settings and not PREFECT_API_TLS_INSECURE_SKIP_VERIFY.value():
                settings["verify"] = verified_context(PREFECT_API_SSL_CERT_FILE.value() or certifi.where())
            __original(self, *args, httpx_settings=settings, **kwargs)

        setattr(__init__, _MARK, True)
        cls.__init__ = __init__


class _PatchAfterImport(importlib.abc.MetaPathFinder):
    """Lets Prefect's client module load as usual, then patches it (once)."""

    def find_spec(self, fullname, path, target=None):
        if fullname != TARGET:
            return None
        sys.meta_path.remove(self)  # find the real spec without finding ourselves again
        try:
            spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return None
        exec_module = spec.loader.exec_module

        def exec_and_patch(module):
            exec_module(module)
            try:
                patch(module)
            except Exception as error:  # a speed-up must never break Prefect
                print(f"workshop_lab.prefect_tls_cache: not applied ({error!r})", file=sys.stderr)
            finally:
                if self in sys.meta_path:
                    sys.meta_path.remove(self)

        spec.loader.exec_module = exec_and_patch
        return spec


def install() -> None:
    if TARGET in sys.modules:
        patch(sys.modules[TARGET])
    elif not any(isinstance(finder, _PatchAfterImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _PatchAfterImport())


install()
