"""A worker process for test_lost_work: serves the `lost.work` task type of
lost_work.yaml. `--mode hang` writes MARKER when the step starts and then
never finishes (the test kills the process with SIGKILL); `--mode quick`
answers at once with its worker id."""

import argparse
import logging
import os
import sys
import time

from cerebelum import Worker, step

parser = argparse.ArgumentParser()
parser.add_argument("--server", required=True)
parser.add_argument("--mode", choices=["hang", "quick"], required=True)
parser.add_argument("--marker", default="")
parser.add_argument("--worker-id", required=True)
args = parser.parse_args()


@step("lost.work")
def work(input, ctx):
    if args.mode == "hang":
        with open(args.marker, "w") as f:
            f.write(f"{os.getpid()} {ctx.attempt}\n")
        time.sleep(3600)
    return {"by": args.worker_id, "attempt": ctx.attempt}


logging.basicConfig(level=logging.INFO, stream=sys.stderr)
Worker(args.server, queues=["lost"], steps=[work],
       worker_id=args.worker_id, poll_wait=2).run()
