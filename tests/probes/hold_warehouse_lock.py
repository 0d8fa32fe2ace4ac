"""Holds the warehouse writer lock on the file in argv[1] as "holder-process", says "held", then
sleeps for two minutes (tests/test_warehouse_lock.py kills it)."""

import sys
import time

from workshop_lab.flow_tools.warehouse import writer_lock

with writer_lock(sys.argv[1], purpose="holder-process"):
    print("held", flush=True)
    time.sleep(120)
