"""workshop_lab/prefect_speedups/tls_cache.py: Prefect's API clients in a lab process share one verified TLS
context instead of loading the CA bundle once per client; the insecure opt-out and a caller's own
`verify` still behave exactly as Prefect's own code does. Runs in fresh interpreters of the lab's
venv, where the `.pth` line installs the hook, as in every lab process."""

from __future__ import annotations

from tests.fresh_interpreter import run_probe

PROBE = """
import json, ssl
made = []
real = ssl.create_default_context
ssl.create_default_context = lambda *a, **k: made.append(1) or real(*a, **k)
from prefect.client.orchestration import get_client, SyncPrefectClient
clients = [get_client(sync_client=True) for _ in range(20)] + [get_client() for _ in range(20)]
contexts = {id(c._client._transport._pool._ssl_context) for c in clients}
modes = {c._client._transport._pool._ssl_context.verify_mode.name for c in clients}
own = ssl.create_default_context()
mine = SyncPrefectClient("http://127.0.0.1:1/api", httpx_settings={"verify": own})
print(json.dumps({"made": len(made), "contexts": len(contexts), "modes": sorted(modes),
                  "own_kept": mine._client._transport._pool._ssl_context is own}))
"""


def probe(**env: str) -> dict:
    return run_probe(PROBE, **env)


def test_forty_clients_share_one_verified_context():
    seen = probe()
    assert seen["contexts"] == 1, seen
    assert seen["modes"] == ["CERT_REQUIRED"], seen
    assert seen["made"] <= 4, seen  # not one per client (Prefect alone makes 40 here)
    assert seen["own_kept"], "a caller's own verify= must be used as given"


def test_the_insecure_opt_out_is_left_to_prefect():
    seen = probe(PREFECT_API_TLS_INSECURE_SKIP_VERIFY="true")
    assert seen["modes"] == ["CERT_NONE"], seen
    assert seen["made"] >= 40, seen  # Prefect's own path, one unverified context per client
