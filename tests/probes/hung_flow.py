"""A flow run from a learner's shell that hangs: it says "started", then sleeps 15 minutes
(tests/test_recovery.py stops it with SIGSTOP, so its heartbeats stop, and kills it at the end)."""

import time

from prefect import flow


@flow(name="recovery-hung-flow")
def hung() -> None:
    """Runs until the test stops (SIGSTOP) and then kills its process."""
    print("started", flush=True)
    time.sleep(900)


if __name__ == "__main__":
    hung()
