"""workshop_lab/prefect_speedups/tls_cache.py: Prefect's API clients in a lab process share one verified TLS
context instead of loading the CA bundle once per client; the insecure opt-out and a caller's own
`verify` still behave exactly as Prefect's own code does. Runs in fresh interpreters of the lab's
venv, where the `.pth` line installs the hook, as in every lab process (tests/probes/speedups_tls_cache.py)."""

from __future__ import annotations

from tests.fresh_interpreter import run_probe


def probe(**env: str) -> dict:
    return run_probe("speedups_tls_cache.py", **env)


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
