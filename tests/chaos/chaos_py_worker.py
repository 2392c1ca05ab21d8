"""The chaos suite's Python worker: serves the `chaos-py` queue
(chaos.mul, chaos.add, chaos.square) and appends one side-effect line per
step run to a log, before and after the step's work:

    {"w": worker, "e": execution, "s": step, "a": attempt, "i": map_index,
     "ev": "start" | "done", "t": unix seconds}

    chaos_py_worker.py --server 127.0.0.1:PORT --id py-1 --log FILE
"""

import argparse
import json
import logging
import os
import random
import time

from cerebelum import StepError, Worker, step

LOG_FD = -1
WORKER_ID = ""


def effect(ctx, ev, index=-1):
    line = json.dumps({"w": WORKER_ID, "e": ctx.execution_id, "s": ctx.step,
                       "a": ctx.attempt, "i": index, "ev": ev,
                       "t": round(time.time(), 3)}) + "\n"
    os.write(LOG_FD, line.encode())  # O_APPEND: one write, one line


def work():
    # Long enough for faults to land while steps run.
    time.sleep(random.uniform(0.05, 0.4))


@step("chaos.mul")
def mul(n, k, flaky, ctx):
    effect(ctx, "start")
    work()
    effect(ctx, "done")
    if flaky and ctx.attempt == 1:
        raise StepError("planned failure of the first attempt",
                        kind="chaos_flaky", retryable=True)
    return {"n": n * k}


@step("chaos.add")
def add(a, b, ctx):
    effect(ctx, "start")
    work()
    effect(ctx, "done")
    return {"n": a + b}


@step("chaos.square")
def square(x, index, ctx):
    effect(ctx, "start", index)
    work()
    effect(ctx, "done", index)
    return x * x


def main():
    global LOG_FD, WORKER_ID
    parser = argparse.ArgumentParser(description="chaos suite worker")
    parser.add_argument("--server", required=True)
    parser.add_argument("--id", required=True)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING,
                        format="%(asctime)s %(levelname)s %(message)s")
    WORKER_ID = args.id
    LOG_FD = os.open(args.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    Worker(args.server, queues=["chaos-py"], steps=[mul, add, square],
           worker_id=args.id, max_in_flight=8, poll_wait=5.0,
           reconnect_backoff=(0.1, 1.0)).run()


if __name__ == "__main__":
    main()
