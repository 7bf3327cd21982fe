"""The test protocol for the Python tests: one "ok - name" / "not ok - name" line per
check (scripts/run-tests counts them), and the exit status says whether any failed."""
import os
import sys

TEMPER = os.environ.get("TEMPER", os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../build/temper"))
_fails = 0


def check(ok, name):
    global _fails
    print(("ok - " if ok else "not ok - ") + name, flush=True)
    _fails += not ok


def done():
    sys.exit(1 if _fails else 0)
