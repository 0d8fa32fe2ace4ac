"""The webhook inbox: a Slack-compatible incoming-webhook endpoint that shows what it received,
so notifications work in a classroom without a Slack workspace.

Point a Slack webhook at http://localhost:8701/hooks/<channel> (the lab's flows and automations
do, unless SLACK_WEBHOOK_URL names a real Slack webhook) and open http://localhost:8701 to see
the messages. Like Slack, a post needs `text` or `blocks` and is answered `ok`.

    GET  /                  the messages, newest first (the page refreshes itself)
    GET  /messages          the same as JSON (?channel=NAME to filter)
    DELETE /messages        empty the inbox
    POST /hooks/{channel}   a Slack incoming-webhook post

Messages are kept in INBOX_FILE (JSON lines) when it is set. Run: `python -m workshop_lab.course_services.inbox`.
"""

from __future__ import annotations

import argparse
import html
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, PlainTextResponse


def message_text(payload: dict[str, Any]) -> str:
    """What Slack would show: `text`, else the text of the blocks."""
    if payload.get("text"):
        return str(payload["text"])
    parts = []
    for block in payload.get("blocks") or []:
        text = block.get("text")
        parts.append(text.get("text", "") if isinstance(text, dict) else str(text or ""))
    return "\n".join(p for p in parts if p)


def create_app(store: Path | None = None) -> FastAPI:
    app = FastAPI(title="Webhook inbox", description=__doc__)
    messages: list[dict[str, Any]] = []
    if store and store.exists():
        messages += [json.loads(line) for line in store.read_text().splitlines() if line.strip()]

    @app.get("/health", response_class=PlainTextResponse)
    async def health() -> str:
        return "ok"

    @app.post("/hooks/{channel}", response_class=PlainTextResponse)
    async def receive(channel: str, request: Request) -> str:
        try:
            payload = await request.json()
        except ValueError:
            raise HTTPException(400, "invalid_payload") from None
        if not isinstance(payload, dict) or not message_text(payload):
            raise HTTPException(400, "no_text")
        message = {
            "id": len(messages) + 1,
            "channel": channel,
            "received_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "text": message_text(payload),
            "payload": payload,
        }
        messages.append(message)
        if store:
            store.parent.mkdir(parents=True, exist_ok=True)
            with store.open("a") as fh:
                fh.write(json.dumps(message) + "\n")
        return "ok"

    @app.get("/messages")
    async def list_messages(channel: str | None = None) -> list[dict[str, Any]]:
        return [m for m in reversed(messages) if channel in (None, m["channel"])]

    @app.delete("/messages")
    async def clear() -> dict[str, int]:
        count = len(messages)
        messages.clear()
        if store and store.exists():
            store.write_text("")
        return {"deleted": count}

    @app.get("/", response_class=HTMLResponse)
    async def page() -> str:
        rows = (
            "".join(
                f"<li><span class=meta>#{html.escape(m['channel'])} · {m['received_at']}</span>"
                f"<pre>{html.escape(m['text'])}</pre></li>"
                for m in reversed(messages)
            )
            or "<li class=meta>No messages yet. Run a flow that notifies, or make one fail.</li>"
        )
        return f"""<!doctype html><html><head><meta charset=utf-8><title>Lab inbox ({len(messages)})</title>
<meta http-equiv=refresh content=3>
<style>body{{font-family:system-ui,sans-serif;max-width:56rem;margin:2rem auto;padding:0 1rem}}
li{{list-style:none;border-bottom:1px solid #ddd;padding:.6rem 0}}.meta{{color:#666;font-size:.85rem}}
pre{{white-space:pre-wrap;margin:.3rem 0 0}}</style></head>
<body><h1>Lab inbox</h1><p class=meta>Slack-compatible webhook: POST /hooks/&lt;channel&gt;. {len(messages)} message(s).</p>
<ul>{rows}</ul></body></html>"""

    return app


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="Run the lab's webhook inbox.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8701)
    args = parser.parse_args()
    store = Path(os.environ["INBOX_FILE"]) if os.environ.get("INBOX_FILE") else None
    uvicorn.run(create_app(store), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
