"""Many waiters: N executions that each sleep S on a durable timer, started
and waited on all at once over gRPC (StartExecution, then WaitForResult on
the same channel), against a real `cerebelum node` on the embedded store.
A first-step sleep's timer is recorded with the start, so its moment is the
execution's created_at plus the sleep.

    /usr/bin/python3 bench/node/many_waiters.py --executions 10000

Prints the total time (first start sent -> last result), how late each
result reached the client after its timer's moment (p50/p99/max), errors, and the node's peak thread count
and RSS while the waits were held (sampled from /proc every 50 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_status(pid: int) -> tuple[int, int]:
    """(threads, RSS in KiB) of `pid`."""
    threads = rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                threads = int(line.split()[1])
            elif line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return threads, rss


class sampler(threading.Thread):
    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.stop, self.threads, self.rss = pid, False, 0, 0

    def run(self) -> None:
        while not self.stop:
            t, r = proc_status(self.pid)
            self.threads, self.rss = max(self.threads, t), max(self.rss, r)
            time.sleep(0.05)


async def run(args, grpc_addr: str) -> int:
    import grpc
    from cerebelum_pb import admin_pb2, admin_pb2_grpc

    async with grpc.aio.insecure_channel(grpc_addr) as channel:
        stub = admin_pb2_grpc.AdminServiceStub(channel)
        await stub.Health(admin_pb2.HealthRequest())
        late: list[float] = []
        ended: list[float] = []
        errors: list[str] = []

        async def one(i: int) -> None:
            try:
                res = await stub.StartExecution(admin_pb2.StartExecutionRequest(
                    workflow="waiter", input_json=f'{{"i": {i}}}',
                    execution_id=f"w-{i}", started_by="bench"))
                due_ms = res.execution.created_at_ms + args.sleep_ms
                info = await stub.WaitForResult(admin_pb2.WaitForResultRequest(
                    execution_id=res.execution.execution_id, timeout_ms=60000))
                done_ms = time.time() * 1000
                if info.status != "completed" or info.result_json != f'{{"i":{i}}}':
                    errors.append(f"w-{i}: {info.status} {info.result_json}")
                else:
                    late.append((done_ms - due_ms) / 1000)
                    ended.append((info.updated_at_ms - due_ms) / 1000)
            except grpc.aio.AioRpcError as e:
                errors.append(f"w-{i}: {e.code().name} {e.details()}")

        t0 = time.monotonic()
        await asyncio.gather(*(one(i) for i in range(args.executions)))
        total = time.monotonic() - t0
    late.sort()
    ended.sort()
    print(f"executions: {args.executions}, each sleeping {args.sleep_ms} ms, "
          f"all started and waited on at once over gRPC")
    print(f"total time (first start -> last result): {total:.2f} s")
    def pct(xs: list[float]) -> str:
        q = lambda p: xs[min(len(xs) - 1, int(p * len(xs)))] * 1000
        return f"p50 {q(0.5):.0f} ms, p99 {q(0.99):.0f} ms, max {xs[-1] * 1000:.0f} ms"
    if late:
        print("after the timer's moment (created_at + sleep, same machine's "
              "clock):")
        print(f"  the execution ended (its updated_at): {pct(ended)}")
        print(f"  the client received the result:       {pct(late)}")
    print(f"errors: {len(errors)}")
    for e in errors[:5]:
        print("  " + e)
    return 1 if errors else 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bin", default=os.path.join(ROOT, "build/src/cerebelum"))
    p.add_argument("--stubs", default=os.path.join(ROOT, "build/tests/python/stubs"))
    p.add_argument("--executions", type=int, default=10000)
    p.add_argument("--sleep-ms", type=int, default=2000)
    args = p.parse_args()
    sys.path.insert(0, args.stubs)
    data = tempfile.mkdtemp(prefix="many-waiters-")
    flows = os.path.join(data, "flows")
    os.makedirs(flows)
    with open(os.path.join(flows, "waiter.yaml"), "w") as f:
        f.write("name: waiter\nsteps:\n"
                f"  - name: nap\n    sleep: {args.sleep_ms}ms\n"
                "  - name: done\n    set: { i: \"input.i\" }\n"
                "output: \"steps.done\"\n")
    grpc_addr = f"127.0.0.1:{free_port()}"
    node = subprocess.Popen(
        [args.bin, "node", "--data-dir",
         os.path.join(data, "node"), "--workflows", flows, "--listen",
         grpc_addr, "--http", ""],
        stderr=subprocess.PIPE, text=True)
    try:
        for line in node.stderr:
            if "node ready" in line:
                break
        else:
            print("the node did not start", file=sys.stderr)
            return 1
        threading.Thread(target=lambda: [None for _ in node.stderr],
                         daemon=True).start()
        idle_threads, idle_rss = proc_status(node.pid)
        s = sampler(node.pid)
        s.start()
        code = asyncio.run(run(args, grpc_addr))
        s.stop = True
        s.join()
        print(f"node threads: {idle_threads} idle, {s.threads} at most during "
              f"the run; RSS: {idle_rss / 1024:.0f} MiB idle, "
              f"{s.rss / 1024:.0f} MiB at most")
        return code
    finally:
        node.terminate()
        node.wait(timeout=30)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
