"""
# 05 · Notifications with a collection: Slack messages from flows, and an automation for failures

What you will learn
- *Collections* are Prefect's integration packages. `prefect-slack` brings a `SlackWebhook` block
  (where to send) and tasks that send messages.
- A *block* keeps configuration (and secrets) on the server: the flow loads it by name, so the
  webhook URL lives in the lab, never in your code or in git.
- An *automation* reacts to events on the server. The lab's setup step created
  `notify-on-failed-flow-runs`: every flow run that fails sends a message, whatever flow it is.

Where messages go
The lab's webhook inbox at http://localhost:8701 plays Slack: it accepts Slack incoming-webhook
posts and shows them. Put a real webhook URL in `.env` (`SLACK_WEBHOOK_URL=https://hooks.slack.com/...`)
and run `./lab deploy` to send to your workspace instead.

How to run it
- `./lab run notifications/notifications` then open http://localhost:8701: the message is there.
- `./lab run notifications/notifications --param fail=true`: the run fails on purpose, and the
  automation's message arrives in the inbox within seconds. See Automations in the UI.
"""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from prefect_slack import SlackWebhook
from prefect_slack.messages import send_incoming_webhook_message

# The block the lab's setup step saved (workshop_lab/stack/setup_lab.py): the inbox, or your Slack.
SLACK_BLOCK = "workshop-slack"


# ---------------------------------------------------------------------------------------------
# The flow is async because prefect-slack's message task is: awaited, it sends. (Called without
# `await` from a plain `def` flow it would send nothing, a classic trap.)
# ---------------------------------------------------------------------------------------------
@flow(name="notifications", log_prints=True)
async def notifications(message: str = "Hello from the Workflow Orchestration Lab!", fail: bool = False) -> str:
    """Send a Slack message through the SlackWebhook block; optionally fail to trigger the failure automation."""
    logger = get_run_logger()
    webhook = await SlackWebhook.load(SLACK_BLOCK)
    text = f"{message} (flow run {flow_run.name})"
    await send_incoming_webhook_message(slack_webhook=webhook, text=text)
    logger.info("Sent to the %r block: %s", SLACK_BLOCK, text)

    # -----------------------------------------------------------------------------------------
    # Failing on purpose: nothing in this flow sends the failure message. The server sees the
    # flow run enter Failed, the automation fires, and its notification block posts it.
    # -----------------------------------------------------------------------------------------
    if fail:
        raise RuntimeError("Failing on purpose, to show the failure automation at work")
    return text


if __name__ == "__main__":
    import asyncio

    asyncio.run(notifications())
