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

Installed with the lab's other Prefect speed-up by workshop_lab/prefect_speedups/__init__.py (a `.pth`
line in the lab's venvs): `patch` runs right after Prefect's client module loads.
"""

from __future__ import annotations

import functools
import ssl

from workshop_lab.prefect_speedups import replace


@functools.lru_cache(maxsize=8)
def verified_context(cafile: str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=cafile)


def patch(module) -> None:
    """Wrap the two client classes' __init__ so they receive the shared context."""
    import certifi
    from prefect.settings import PREFECT_API_SSL_CERT_FILE, PREFECT_API_TLS_INSECURE_SKIP_VERIFY

    for cls in (module.PrefectClient, module.SyncPrefectClient):
        original = cls.__init__

        @functools.wraps(original)
        def __init__(self, *args, __original=original, httpx_settings=None, **kwargs):
            settings = dict(httpx_settings or {})
            if "verify" not in settings and not PREFECT_API_TLS_INSECURE_SKIP_VERIFY.value():
                settings["verify"] = verified_context(PREFECT_API_SSL_CERT_FILE.value() or certifi.where())
            __original(self, *args, httpx_settings=settings, **kwargs)

        replace(cls, "__init__", __init__)
