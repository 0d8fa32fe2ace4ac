"""Inside the Docker lab's Dask workers, the lab's addresses as your machine sees them work too.

A flow run from a learner's shell (`.venv/bin/python flows/00_hello_lab.py`) talks to the Docker
lab through the ports it publishes on the host: Prefect at 127.0.0.1:4200, the upstream at
127.0.0.1:8700. Its tasks run in the Dask worker containers, and they carry those addresses with
them: prefect-dask ships the flow's Prefect settings (its API URL) to the worker with each task,
and a task pickled from the learner's script holds the module's `UPSTREAM_URL` as it was on the
host. Inside a container, 127.0.0.1 is the container itself, so those tasks would fail to reach
the API ("Failed to reach API at http://127.0.0.1:4200/api/").

This preload (`dask worker --preload workshop_lab.stack.dask_loopback`, Compose only: on the embedded
lab host and worker share one loopback) listens on the container's loopback at each host port
and forwards to the service behind it, so the host's addresses mean the same lab in a container.
`LAB_LOOPBACK_FORWARDS` lists them: `4200=prefect-server:4200,8700=upstream:8700,...`. The
container's own network stays as it is: the forwards bind to 127.0.0.1 only.

Kept in the lab rather than a sidecar (socat): the worker image has no socat, and a few lines of
asyncio in the worker's own event loop cost nothing while idle.
"""

from __future__ import annotations

import asyncio
import logging
import os

logger = logging.getLogger("distributed.lab_loopback")
_servers: list[asyncio.AbstractServer] = []


def forwards(spec: str | None = None) -> list[tuple[int, str, int]]:
    """`4200=prefect-server:4200,...` -> [(4200, "prefect-server", 4200), ...]."""
    spec = os.environ.get("LAB_LOOPBACK_FORWARDS", "") if spec is None else spec
    parsed = []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        local, _, target = item.partition("=")
        host, _, port = target.rpartition(":")
        parsed.append((int(local), host, int(port)))
    return parsed


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


def _handler(host: str, port: int):
    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(host, port)
        except OSError as error:
            logger.warning("lab loopback: cannot reach %s:%s (%s)", host, port, error)
            client_writer.close()
            return
        await asyncio.gather(_pipe(client_reader, server_writer), _pipe(server_reader, client_writer))

    return handle


async def dask_setup(worker) -> None:
    """Dask calls this as the worker starts: open each forward on the container's loopback."""
    for local, host, port in forwards():
        try:
            _servers.append(await asyncio.start_server(_handler(host, port), "127.0.0.1", local))
        except OSError as error:  # another worker process of this container forwards it already
            logger.info("lab loopback: 127.0.0.1:%s not forwarded here (%s)", local, error)


async def dask_teardown(worker) -> None:
    for server in _servers:
        server.close()
    _servers.clear()
