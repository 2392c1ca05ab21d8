"""Many waiters: N executions that each sleep S on a durable timer, started
and waited on all at once, against a real `cerebelum node` on the embedded
store, over gRPC (the default) or HTTP.

- `--protocol grpc`: one `grpc.aio` channel; StartExecution, then
  WaitForResult on the same channel.
- `--protocol http`: raw keep-alive HTTP/1.1 connections from asyncio (the
  standard library only), one per waiter, each sending
  `POST /v1/workflows/waiter/executions?wait=true&id=w-<i>` and reading the
  answer, which must say `completed`.

A first-step sleep's timer is recorded with the start, so its moment is the
execution's created_at plus the sleep.

    /usr/bin/python3 bench/node/many_waiters.py --executions 10000
    /usr/bin/python3 bench/node/many_waiters.py --protocol http --executions 10000

Prints the total time (first start sent -> last result), when the node
created the executions (created_at, after the first start was sent), how late
each result reached the client after its timer's moment (p50/p99/max),
errors, the client's CPU time, and the node's peak thread count and RSS
while the waits were held (sampled from /proc every 50 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
from dataclasses import dataclass, field

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from node_harness import (ROOT, cpu_used, node, pct, proc_status,  # noqa: E402
                          open_files_limit, raise_nofile, sampler, thread_cpu)


@dataclass
class outcome:
    """What a client measured; times in seconds."""
    total: float = 0.0
    # The result reached the client / the execution ended (updated_at),
    # after the timer's moment (created_at + sleep).
    late: list[float] = field(default_factory=list)
    ended: list[float] = field(default_factory=list)
    # created_at, after the first start was sent (wall clock).
    created: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # This process's CPU seconds (user, system) while the run was timed.
    client_cpu: tuple[float, float] = (0.0, 0.0)

    def begin(self) -> tuple[float, float]:
        """Starts the clock; returns (wall clock, monotonic) now."""
        ru = resource.getrusage(resource.RUSAGE_SELF)
        self._cpu0 = (ru.ru_utime, ru.ru_stime)
        self._t0 = time.monotonic()
        return time.time(), self._t0

    def end(self) -> None:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        self.total = time.monotonic() - self._t0
        self.client_cpu = (ru.ru_utime - self._cpu0[0],
                           ru.ru_stime - self._cpu0[1])

    def completed(self, i: int, t0_wall: float, sleep_ms: int, status: str,
                  result, created_at_ms: int, updated_at_ms: int) -> None:
        """Records the answer of waiter `i` (result: the parsed result)."""
        if status != "completed" or result != {"i": i}:
            self.errors.append(f"w-{i}: {status} {result}")
            return
        done_ms = time.time() * 1000
        due_ms = created_at_ms + sleep_ms
        self.late.append((done_ms - due_ms) / 1000)
        self.ended.append((updated_at_ms - due_ms) / 1000)
        self.created.append(created_at_ms / 1000 - t0_wall)


def report(args, how: str, out: outcome) -> int:
    print(f"executions: {args.executions}, each sleeping {args.sleep_ms} ms, "
          f"all started and waited on at once {how}")
    print(f"total time (first start -> last result): {out.total:.2f} s")
    if out.created:
        c = sorted(out.created)
        print(f"created_at after the first start was sent: first "
              f"{c[0] * 1000:.0f} ms, {pct(c)}")
    if out.late:
        print("after the timer's moment (created_at + sleep, same machine's "
              "clock):")
        print(f"  the execution ended (its updated_at): {pct(out.ended)}")
        print(f"  the client received the result:       {pct(out.late)}")
    print(f"client CPU during the run: {out.client_cpu[0]:.2f} s user, "
          f"{out.client_cpu[1]:.2f} s system")
    print(f"errors: {len(out.errors)}")
    for e in out.errors[:5]:
        print("  " + e)
    return 1 if out.errors else 0


async def run_grpc(args, addr: str) -> outcome:
    import grpc
    from cerebelum_pb import admin_pb2, admin_pb2_grpc

    out = outcome()
    async with grpc.aio.insecure_channel(addr) as channel:
        stub = admin_pb2_grpc.AdminServiceStub(channel)
        await stub.Health(admin_pb2.HealthRequest())

        async def one(i: int) -> None:
            try:
                res = await stub.StartExecution(admin_pb2.StartExecutionRequest(
                    workflow="waiter", input_json=f'{{"i": {i}}}',
                    execution_id=f"w-{i}", started_by="bench"))
                info = await stub.WaitForResult(admin_pb2.WaitForResultRequest(
                    execution_id=res.execution.execution_id, timeout_ms=60000))
                out.completed(i, t0_wall, args.sleep_ms, info.status,
                              json.loads(info.result_json or "null"),
                              res.execution.created_at_ms, info.updated_at_ms)
            except grpc.aio.AioRpcError as e:
                out.errors.append(f"w-{i}: {e.code().name} {e.details()}")

        t0_wall, _ = out.begin()
        await asyncio.gather(*(one(i) for i in range(args.executions)))
        out.end()
    return out


class http_answer(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection waiting for one answer (a
    Content-Length body, as the node sends). A protocol rather than
    asyncio streams: a third less of the client's CPU at 10,000."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.answer: asyncio.Future = asyncio.get_running_loop().create_future()

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0 or self.answer.done():
            return
        lines = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        if len(self.buf) >= end + 4 + length:
            self.answer.set_result((int(lines[0].split(" ", 2)[1]),
                                    bytes(self.buf[end + 4:end + 4 + length])))

    def connection_lost(self, exc) -> None:
        if not self.answer.done():
            self.answer.set_exception(
                exc or ConnectionError("closed before the answer"))


async def run_http(args, host: str, port: int) -> outcome:
    out = outcome()
    connect_s: list[float] = []

    def post(i: int) -> bytes:
        body = f'{{"i": {i}}}'.encode()
        return (f"POST /v1/workflows/waiter/executions?wait=true&id=w-{i}"
                f"&by=bench&timeout_ms=60000 HTTP/1.1\r\n"
                f"Host: {host}:{port}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode() + body

    loop = asyncio.get_running_loop()

    async def connect(i: int) -> http_answer | None:
        try:
            c0 = time.monotonic()
            _, conn = await loop.create_connection(http_answer, host, port)
            connect_s.append(time.monotonic() - c0)
            return conn
        except OSError as e:
            out.errors.append(f"w-{i}: connect: {type(e).__name__} {e}")
            return None

    async def one(i: int, conn: http_answer | None) -> None:
        if conn is None:
            conn = await connect(i)
            if conn is None:
                return
        try:
            conn.transport.write(post(i))
            status, body = await conn.answer
            if status not in (200, 201):
                out.errors.append(f"w-{i}: HTTP {status} {body[:200]!r}")
                return
            ex = json.loads(body)["execution"]
            out.completed(i, t0_wall, args.sleep_ms, ex["status"],
                          ex.get("result"), ex["created_at_ms"],
                          ex["updated_at_ms"])
        except (OSError, ValueError, KeyError) as e:
            out.errors.append(f"w-{i}: {type(e).__name__} {e}")
        finally:
            conn.transport.close()

    conns = [None] * args.executions
    if args.preconnect:
        c0 = time.monotonic()
        conns = await asyncio.gather(*(connect(i)
                                       for i in range(args.executions)))
        print(f"{args.executions} connections opened before the run in "
              f"{time.monotonic() - c0:.2f} s (not counted in the total)")
        if any(c is None for c in conns):
            return out
    t0_wall, _ = out.begin()
    await asyncio.gather(*(one(i, conns[i]) for i in range(args.executions)))
    out.end()
    if connect_s:
        print(f"TCP connect (client side): {pct(connect_s)}")
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bin", default=os.path.join(ROOT, "build/src/cerebelum"))
    p.add_argument("--stubs", default=os.path.join(ROOT, "build/tests/python/stubs"))
    p.add_argument("--protocol", choices=("grpc", "http"), default="grpc")
    p.add_argument("--executions", type=int, default=10000)
    p.add_argument("--sleep-ms", type=int, default=2000)
    p.add_argument("--preconnect", action="store_true",
                   help="http: open every connection before the run, so the "
                        "total counts the requests only")
    args = p.parse_args()
    sys.path.insert(0, args.stubs)
    nofile = raise_nofile()
    if args.protocol == "http" and nofile < args.executions + 64:
        print(f"open files limit {nofile} is too low for {args.executions} "
              "connections", file=sys.stderr)
        return 1
    flow = ("name: waiter\nsteps:\n"
            f"  - name: nap\n    sleep: {args.sleep_ms}ms\n"
            "  - name: done\n    set: { i: \"input.i\" }\n"
            "output: \"steps.done\"\n")
    with node(args.bin, {"waiter.yaml": flow}, http=args.protocol == "http",
              prefix="many-waiters-") as n:
        print(f"open files limit: client {nofile}, node "
              f"{open_files_limit(n.pid)}")
        idle_threads, idle_rss = proc_status(n.pid)
        cpu0 = thread_cpu(n.pid)
        s = sampler(n.pid)
        s.start()
        if args.protocol == "http":
            out = asyncio.run(run_http(args, "127.0.0.1", n.http_port))
            how = ("over HTTP (a keep-alive connection each"
                   + (", opened beforehand)" if args.preconnect else ")"))
        else:
            out = asyncio.run(run_grpc(args, n.grpc_addr))
            how = "over gRPC (one channel)"
        s.finish()
        cpu1 = thread_cpu(n.pid)
        code = report(args, how, out)
        print(f"node CPU during the run: {cpu_used(cpu0, cpu1)}")
        n.print_complaints(3)
        print(f"node threads: {idle_threads} idle, {s.threads} at most during "
              f"the run; RSS: {idle_rss / 1024:.0f} MiB idle, "
              f"{s.rss / 1024:.0f} MiB at most ({s.rss_at:.1f} s after the "
              f"client began, connecting included)")
        return code

if __name__ == "__main__":
    sys.exit(main())
