"""Probe for tests/test_prefect_tls_cache.py: 40 Prefect API clients and the TLS contexts they
got, counted at `ssl.create_default_context`; prints what it saw as JSON."""

import json
import ssl

made = []
real = ssl.create_default_context
ssl.create_default_context = lambda *a, **k: made.append(1) or real(*a, **k)

from prefect.client.orchestration import SyncPrefectClient, get_client  # noqa: E402  (after the counter)

clients = [get_client(sync_client=True) for _ in range(20)] + [get_client() for _ in range(20)]
contexts = {id(c._client._transport._pool._ssl_context) for c in clients}
modes = {c._client._transport._pool._ssl_context.verify_mode.name for c in clients}
own = ssl.create_default_context()
mine = SyncPrefectClient("http://127.0.0.1:1/api", httpx_settings={"verify": own})
print(
    json.dumps(
        {
            "made": len(made),
            "contexts": len(contexts),
            "modes": sorted(modes),
            "own_kept": mine._client._transport._pool._ssl_context is own,
        }
    )
)
