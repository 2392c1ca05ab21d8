"""Tasks/s through Python workers: a 3-step workflow (a >> b >> c, each a
trivial async step) run by N worker processes against a running node.

    /usr/bin/python3 sdk/python/bench/bench_workers.py --server 127.0.0.1:9740 \
        --workers 16 --executions 2000 --concurrency 64

Prints executions/s, tasks/s (3 per execution) and the p50/p99 latency of
one execution (start → completed result), measured by the client.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import logging
import os
import statistics
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                ".."))

from cerebelum import Client, Worker, step, workflow  # noqa: E402


@step
async def bench_a(n):
    return n + 1


@step
async def bench_b(bench_a):
    return bench_a * 2


@step
async def bench_c(bench_b):
    return bench_b + 3


@workflow(name="py_bench3", queue="bench", version="1",
          output="steps.bench_c")
def bench3():
    return bench_a >> bench_b >> bench_c


def run_worker(server: str, max_in_flight: int) -> None:
    logging.basicConfig(level=logging.WARNING)
    Worker(server, ["bench"], workflows=[bench3], max_in_flight=max_in_flight,
           poll_wait=5).run()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--server", default="127.0.0.1:9740")
    p.add_argument("--workers", type=int, default=16)
    p.add_argument("--max-in-flight", type=int, default=4)
    p.add_argument("--executions", type=int, default=1000)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        run_worker(args.server, args.max_in_flight)
        return 0

    procs = [subprocess.Popen([sys.executable, os.path.abspath(__file__),
                               "--worker", "--server", args.server,
                               "--max-in-flight", str(args.max_in_flight)])
             for _ in range(args.workers)]
    client = Client(args.server, by="bench")
    try:
        deadline = time.monotonic() + 30
        while "py_bench3" not in client.workflows():
            if time.monotonic() > deadline:
                print("the workers did not register py_bench3",
                      file=sys.stderr)
                return 1
            time.sleep(0.1)
        # Warm-up: every worker polling, connections open.
        client.result(client.start(bench3, {"n": 0}).execution_id, 30)
        run = uuid.uuid4().hex[:6]

        def one(i: int) -> float:
            t0 = time.perf_counter()
            ex = client.start(bench3, {"n": i},
                              execution_id=f"bench-{run}-{i}")
            r = client.result(ex.execution_id, 120)
            if r != (i + 1) * 2 + 3:
                raise AssertionError(f"execution {i}: result {r}")
            return time.perf_counter() - t0

        t0 = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(args.concurrency) as pool:
            lat = sorted(pool.map(one, range(args.executions)))
        elapsed = time.perf_counter() - t0
        q = statistics.quantiles(lat, n=100)
        print(f"{args.executions} executions x 3 tasks, {args.workers} "
              f"workers (max_in_flight {args.max_in_flight}), "
              f"{args.concurrency} concurrent clients: {elapsed:.2f} s")
        print(f"  executions/s {args.executions / elapsed:.1f}   "
              f"tasks/s {3 * args.executions / elapsed:.1f}")
        print(f"  execution latency p50 {q[49] * 1000:.1f} ms   "
              f"p99 {q[98] * 1000:.1f} ms")
        return 0
    finally:
        client.close()
        for pr in procs:
            pr.terminate()
        for pr in procs:
            try:
                pr.wait(30)
            except subprocess.TimeoutExpired:
                pr.kill()


if __name__ == "__main__":
    sys.exit(main())
