"""Front-end load probes: what a real `cerebelum node` (embedded SQLite,
durable commits, HTTP on; started here on free ports in a temporary
directory) does under a flood of starts, under many slow or idle
connections, and under many gRPC long-polls. Standard library only (plus
grpcio and the generated stubs for `polls`).

    /usr/bin/python3 bench/node/front_end_load.py flood [--sleep-ms 200]
    /usr/bin/python3 bench/node/front_end_load.py connections
    /usr/bin/python3 bench/node/front_end_load.py polls [--workers 1] [--tasks 10000]

flood: offers --starts (100,000) `POST /v1/workflows/flood/executions?id=f-<i>`
  (no wait) paced open-loop over --seconds (60) from one asyncio loop on many
  keep-alive connections (a request due while every connection is busy
  opens another, up to --max-conns (9,000), then waits for one: its lateness is
  reported). The workflow is three native calls with a start-to-close
  `timeout` (--step-timeout, no retry: a timeout fails the execution) and a
  `set` step, with --sleep-ms a durable sleep first. Counts answers by status
  (201, 429 with its Retry-After, others), then waits until every accepted
  execution is terminal (the node's `cerebelum_executions_finished_total`)
  and lists the failed ones by error kind.

connections: holds --slow (300) slowloris connections (half a request each,
  a byte more every 2 s, reopened when the node cuts them), --idle (1,000)
  connections that send nothing and --waiting (1,000) `?wait=true` starts of
  a workflow sleeping --nap-s (40 s); meanwhile a normal client (its own
  thread, blocking sockets, a new connection per request) measures
  `GET /v1/health` and a start+wait of a two-`set` workflow, --samples (50)
  each, compared with the same measure before the load.

polls: registers --workers (10) workers over gRPC on queue `probe`
  (max_in_flight = their share of the polls), holds --polls (10,000)
  `PollTask` long-polls (wait --poll-wait-s) over --channels (20) separate
  HTTP/2 connections for --hold-s, then starts --tasks executions of a
  workflow whose only step is a task on `probe`, completes every task a poll
  received and checks that each execution completed.

Each prints the node's threads and RSS (idle -> peak, sampled every 50 ms),
its CPU time and its warnings and errors.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import resource
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from node_harness import (ROOT, cpu_used, node, open_files_limit,  # noqa: E402
                          pct, proc_status, raise_nofile, sampler, thread_cpu)


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


class keepalive(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; answers (Content-Length bodies,
    as the node sends) are matched in order with the requests sent."""

    def __init__(self) -> None:
        self.transport = None
        self.buf = bytearray()
        self.pending: collections.deque = collections.deque()
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport) -> None:
        self.transport = transport

    def request(self, data: bytes) -> asyncio.Future:
        fut = asyncio.get_running_loop().create_future()
        self.pending.append(fut)
        self.transport.write(data)
        return fut

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0"))
            if len(self.buf) < end + 4 + length:
                return
            body = bytes(self.buf[end + 4:end + 4 + length])
            del self.buf[:end + 4 + length]
            status = int(lines[0].split(" ", 2)[1])
            if self.pending:
                fut = self.pending.popleft()
                if not fut.done():
                    fut.set_result((status, headers, body))

    def connection_lost(self, exc) -> None:
        while self.pending:
            fut = self.pending.popleft()
            if not fut.done():
                fut.set_exception(exc or ConnectionError("closed by the node"))
        if not self.closed.done():
            self.closed.set_result(time.monotonic())


def http_get(port: int, path: str) -> tuple[int, bytes]:
    """A blocking GET on a new connection."""
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def metric_values(port: int, family: str) -> dict[str, float]:
    """Series of `family` in /metrics: label text -> value."""
    _, body = http_get(port, "/metrics")
    out = {}
    for line in body.decode().splitlines():
        if line.startswith(family + "{") or line.startswith(family + " "):
            name, _, value = line.rpartition(" ")
            out[name[len(family):]] = float(value)
    return out


def label_value(labels: str, name: str) -> str:
    return labels.split(name + '="', 1)[1].split('"', 1)[0]


def histogram_quantiles(port: int, family: str,
                        match: str = "") -> str:
    """Count, mean and p50 / p99 (upper bucket bounds) of a Prometheus
    histogram in /metrics, summed over the series whose labels hold
    `match`."""
    buckets: dict[float, float] = collections.defaultdict(float)
    total = count = 0.0
    for labels, v in metric_values(port, family + "_bucket").items():
        if match in labels:
            le = label_value(labels, "le")
            buckets[float("inf") if le == "+Inf" else float(le)] += v
    for labels, v in metric_values(port, family + "_sum").items():
        if match in labels:
            total += v
    for labels, v in metric_values(port, family + "_count").items():
        if match in labels:
            count += v
    if not count or not buckets:
        return "none"
    bounds = sorted(buckets)
    # The buckets, the sum and the count are read in separate scrapes: the
    # quantiles use the buckets' own total (the +Inf bucket).
    in_buckets = buckets[bounds[-1]]
    q = lambda p: next(b for b in bounds if buckets[b] >= p * in_buckets)
    return (f"{int(count)}, mean {total / count:.4g}, p50 <= {q(0.5):g}, "
            f"p99 <= {q(0.99):g}, max <= {q(1.0):g}")


def finished(port: int, workflow: str) -> dict[str, int]:
    out: dict[str, int] = collections.Counter()
    for labels, v in metric_values(
            port, "cerebelum_executions_finished_total").items():
        if f'workflow="{workflow}"' in labels:
            status = labels.split('status="')[1].split('"')[0]
            out[status] += int(v)
    return out


def list_executions(port: int, status: str, workflow: str) -> list[dict]:
    out, token = [], ""
    while True:
        path = (f"/v1/executions?status={status}&workflow={workflow}"
                f"&page_size=1000" + (f"&page_token={token}" if token else ""))
        code, body = http_get(port, path)
        if code != 200:
            raise RuntimeError(f"GET {path}: {code} {body[:200]!r}")
        page = json.loads(body)
        out += page["executions"]
        token = page.get("next_page_token", "")
        if not token:
            return out


def node_figures(n: node, idle: tuple[int, int], s: sampler, cpu0) -> None:
    cpu1 = thread_cpu(n.pid)
    print(f"node CPU: {cpu_used(cpu0, cpu1)}")
    print(f"node threads: {idle[0]} idle -> {s.threads} at most; RSS "
          f"{idle[1] / 1024:.0f} MiB idle -> {s.rss / 1024:.0f} MiB at most "
          f"({s.rss_at:.1f} s in)")
    n.print_complaints()


# -- flood ---------------------------------------------------------------------

def flood_workflow(args) -> str:
    t = args.step_timeout
    steps = []
    if args.sleep_ms:
        steps.append(f"  - name: nap\n    sleep: {args.sleep_ms}ms\n")
    steps += [
        "  - name: add_one\n    call: bench.add_one\n"
        f"    input: {{ i: \"input.i\" }}\n    timeout: {t}\n",
        "  - name: note\n    set: { n: \"steps.add_one.n\" }\n",
        "  - name: double\n    call: bench.double\n"
        f"    input: {{ n: \"steps.note.n\" }}\n    timeout: {t}\n",
        "  - name: add_three\n    call: bench.add_three\n"
        f"    input: {{ n: \"steps.double.n\" }}\n    timeout: {t}\n",
    ]
    return ("name: flood\nversion: \"1\"\noutput: \"steps.add_three.n\"\n"
            "steps:\n" + "".join(steps))


async def flood_offer(args, port: int) -> dict:
    loop = asyncio.get_running_loop()
    idle: list[keepalive] = []
    waiting: collections.deque = collections.deque()  # (i, due) for a conn
    opened = [0]
    statuses: collections.Counter = collections.Counter()
    retry_after: collections.Counter = collections.Counter()
    latency: dict[int, list[float]] = collections.defaultdict(list)
    send_late: list[float] = []
    others: list[str] = []
    windows: dict[int, collections.Counter] = collections.defaultdict(
        collections.Counter)
    inflight = set()
    t0 = loop.time()

    def req(i: int) -> bytes:
        body = f'{{"i": {i}}}'.encode()
        return (f"POST /v1/workflows/flood/executions?id=f-{i}&by=flood "
                f"HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: "
                f"application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                ).encode() + body

    def release(c: keepalive) -> None:
        if c.transport.is_closing():
            opened[0] -= 1
            return
        if waiting:
            i, due = waiting.popleft()
            send(c, i, due)
        else:
            idle.append(c)

    def send(c: keepalive, i: int, due: float) -> None:
        now = loop.time()
        send_late.append(now - due)
        fut = c.request(req(i))

        def done(f, c=c, i=i, sent=now, due=due):
            w = int(due - t0) // 10
            if f.exception() is not None:
                statuses["transport error"] += 1
                windows[w]["error"] += 1
                others.append(f"f-{i}: {type(f.exception()).__name__} "
                              f"{f.exception()}")
                opened[0] -= 1
                c.transport.close()
            else:
                status, headers, body = f.result()
                statuses[status] += 1
                windows[w][status] += 1
                latency[status].append(loop.time() - sent)
                if status == 429:
                    retry_after[headers.get("retry-after", "(none)")] += 1
                elif status != 201:
                    others.append(f"f-{i}: {status} {body[:200]!r}")
                release(c)
        fut.add_done_callback(done)
        inflight.add(fut)
        fut.add_done_callback(inflight.discard)

    async def open_and_send(i: int, due: float) -> None:
        try:
            _, c = await loop.create_connection(keepalive, "127.0.0.1", port)
        except OSError as e:
            opened[0] -= 1
            statuses["connect error"] += 1
            others.append(f"f-{i}: connect: {e}")
            return
        send(c, i, due)

    for _ in range(args.initial_conns):
        _, c = await loop.create_connection(keepalive, "127.0.0.1", port)
        idle.append(c)
        opened[0] += 1
    peak_conns = opened[0]
    t0 = loop.time()
    interval = args.seconds / args.starts
    opening = set()
    for i in range(args.starts):
        due = t0 + i * interval
        delay = due - loop.time()
        if delay > 0.002:
            await asyncio.sleep(delay)
        if idle:
            send(idle.pop(), i, due)
        elif opened[0] < args.max_conns:
            opened[0] += 1
            peak_conns = max(peak_conns, opened[0])
            t = asyncio.ensure_future(open_and_send(i, due))
            opening.add(t)
            t.add_done_callback(opening.discard)
        else:
            waiting.append((i, due))
    offered_s = loop.time() - t0
    while opening or inflight or waiting:
        await asyncio.sleep(0.05)
    answered_s = loop.time() - t0
    return dict(statuses=statuses, retry_after=retry_after, latency=latency,
                send_late=send_late, others=others, windows=windows,
                offered_s=offered_s, answered_s=answered_s,
                peak_conns=peak_conns)


def run_flood(args) -> int:
    wf = flood_workflow(args)
    print(f"workflow flood ({'with' if args.sleep_ms else 'without'} a "
          f"sleep):\n" + "".join("  " + l + "\n" for l in wf.splitlines()))
    with node(args.bin, {"flood.yaml": wf}, prefix="flood-") as n:
        print(f"load average before: {loadavg()}; open files limit: node "
              f"{open_files_limit(n.pid)}")
        idle = proc_status(n.pid)
        cpu0 = thread_cpu(n.pid)
        s = sampler(n.pid)
        s.start()
        w0 = time.monotonic()
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        r = asyncio.run(flood_offer(args, n.http_port))
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        print(f"client CPU while offering: {ru1.ru_utime - ru0.ru_utime:.1f} s "
              f"user, {ru1.ru_stime - ru0.ru_stime:.1f} s system")
        print(f"offered {args.starts} starts in {r['offered_s']:.2f} s "
              f"(target {args.seconds} s), all answered "
              f"{r['answered_s']:.2f} s after the first; connections used: "
              f"{r['peak_conns']}; load average now {loadavg()}")
        print(f"send lateness (sent after its moment): {pct(r['send_late'])}")
        st = r["statuses"]
        print("answers: " + ", ".join(f"{k}: {v}" for k, v in
                                      sorted(st.items(), key=str)))
        for k, lat in sorted(r["latency"].items()):
            print(f"  {k} latency: {pct(lat)}")
        if r["retry_after"]:
            print("  429 Retry-After: " + ", ".join(
                f"{k} s ×{v}" for k, v in r["retry_after"].items()))
        for o in r["others"][:5]:
            print("  " + o)
        print("per 10 s of offer (by when each start was due): " + "; ".join(
            f"{w * 10}-{w * 10 + 10} s: " + ", ".join(
                f"{k} {v}" for k, v in sorted(c.items(), key=str))
            for w, c in sorted(r["windows"].items())))
        accepted = st.get(201, 0) + st.get(200, 0)
        deadline = time.monotonic() + args.drain_s
        while True:
            f = finished(n.http_port, "flood")
            if sum(f.values()) >= accepted or time.monotonic() > deadline:
                break
            time.sleep(1)
        drain = time.monotonic() - w0
        s.finish()
        print(f"accepted {accepted}; terminal {sum(f.values())} "
              f"{dict(f)} {drain:.1f} s after the first start")
        code = 0
        if sum(f.values()) < accepted:
            code = 1
            for status in ("running", "sleeping"):
                left = list_executions(n.http_port, status, "flood")
                print(f"  still {status}: {len(left)}")
        if f.get("failed", 0):
            code = 1
            failed = list_executions(n.http_port, "failed", "flood")
            # The list leaves the error out: describe each (at most 3,000).
            kinds: collections.Counter = collections.Counter()
            steps: collections.Counter = collections.Counter()
            examples = []
            for e in failed[:3000]:
                _, body = http_get(n.http_port,
                                   f"/v1/executions/{e['execution_id']}")
                ex = json.loads(body)
                err = ex.get("error") or {}
                kinds[err.get("kind", "?")] += 1
                steps[ex.get("awaiting_step") or ex.get("phase", "?")] += 1
                if len(examples) < 3:
                    examples.append(ex)
            print(f"failed by error kind: {dict(kinds)}; by phase: "
                  f"{dict(steps)}")
            for ex in examples:
                print(f"  {ex['execution_id']}: error "
                      f"{json.dumps(ex.get('error'))}")
            if examples:
                eid = examples[0]["execution_id"]
                _, body = http_get(n.http_port,
                                   f"/v1/executions/{eid}/history")
                t_first = None
                print(f"  history of {eid}:")
                for ev in json.loads(body)["events"]:
                    t_first = t_first or ev["recorded_at_ms"]
                    extra = {k: v for k, v in ev.items() if k in (
                        "step", "attempt", "error", "timer_id", "fire_at_ms")}
                    print(f"    +{ev['recorded_at_ms'] - t_first:5d} ms "
                          f"{ev['seq']:2d} {ev['type']} "
                          f"{json.dumps(extra)[:300]}")
        if f.get("completed", 0):
            # Spot-check results: (i + 1) * 2 + 3.
            bad = 0
            for i in range(0, args.starts, max(1, args.starts // 50)):
                code_, body = http_get(n.http_port, f"/v1/executions/f-{i}")
                if code_ == 200:
                    ex = json.loads(body)
                    if ex["status"] == "completed" and \
                            ex["result"] != (i + 1) * 2 + 3:
                        bad += 1
            print(f"results spot-checked (every {max(1, args.starts // 50)}"
                  f"th id): {bad} wrong")
        for family, match, unit in (
                ("cerebelum_store_commit_seconds", "", "s"),
                ("cerebelum_store_commit_group_size", "", "appends"),
                ("cerebelum_timer_lateness_seconds", "", "s"),
                ("cerebelum_step_duration_seconds", 'kind="native"', "s"),
                ("cerebelum_api_request_seconds",
                 'route="/v1/workflows/{name}/executions"', "s")):
            print(f"node histogram {family}{{{match}}} ({unit}): "
                  f"{histogram_quantiles(n.http_port, family, match)}")
        counted = {label_value(k, "code"): int(v) for k, v in metric_values(
            n.http_port, "cerebelum_api_requests_total").items()
            if 'route="/v1/workflows/{name}/executions"' in k}
        print(f"start answers as the node counted them: {counted}")
        node_figures(n, idle, s, cpu0)
        if st.get("transport error") or st.get("connect error") or \
                any(k not in (200, 201, 429) for k in st):
            code = 1
        return code


# -- connections ---------------------------------------------------------------

def measure(port: int, samples: int, label: str,
            gap: float = 0.1) -> tuple[list, list, list]:
    """The normal client: `samples` GET /v1/health and start+wait, each on a
    new connection; returns (health s, start+wait s, errors)."""
    import http.client
    health, start, errors = [], [], []
    for k in range(samples):
        for path, method, out in (
                ("/v1/health", "GET", health),
                (f"/v1/workflows/quick/executions?wait=true&id={label}-{k}",
                 "POST", start)):
            t = time.monotonic()
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
                c.request(method, path, body=b'{"x": 1}' if method == "POST"
                          else None)
                r = c.getresponse()
                body = r.read()
                c.close()
                ok = r.status == 200 if method == "GET" else (
                    r.status == 201
                    and json.loads(body)["execution"]["status"] == "completed")
                if ok:
                    out.append(time.monotonic() - t)
                else:
                    errors.append(f"{method} {path}: {r.status} {body[:120]!r}")
            except (OSError, http.client.HTTPException, ValueError) as e:
                errors.append(f"{method} {path}: {type(e).__name__} {e} after "
                              f"{time.monotonic() - t:.2f} s")
        time.sleep(gap)
    return health, start, errors


async def hold_load(args, port: int, stop: asyncio.Event, stats: dict) -> None:
    loop = asyncio.get_running_loop()
    half = (b"POST /v1/workflows/quick/executions HTTP/1.1\r\nHost: x\r\n"
            b"Content-Len")

    async def slow(k: int) -> None:
        while not stop.is_set():
            try:
                tr, c = await loop.create_connection(keepalive, "127.0.0.1",
                                                     port)
            except OSError as e:
                stats["slow connect errors"] += 1
                stats.setdefault("slow connect error", str(e))
                await asyncio.sleep(0.5)
                continue
            t = time.monotonic()
            tr.write(half)
            while not stop.is_set() and not c.closed.done():
                try:
                    await asyncio.wait_for(asyncio.shield(c.closed), 2)
                except asyncio.TimeoutError:
                    tr.write(b"g")  # one byte more, never the whole header
            if c.closed.done() and not stop.is_set():
                stats["slow cut"] += 1
                stats["slow cut after"].append(c.closed.result() - t)
            tr.close()

    async def idle(k: int) -> None:
        try:
            tr, c = await loop.create_connection(keepalive, "127.0.0.1", port)
        except OSError as e:
            stats["idle connect errors"] += 1
            stats.setdefault("idle connect error", str(e))
            return
        stats["idle open"] += 1
        done, _ = await asyncio.wait(
            [asyncio.ensure_future(stop.wait()), c.closed],
            return_when=asyncio.FIRST_COMPLETED)
        if c.closed.done() and not stop.is_set():
            stats["idle closed by the node"] += 1
        tr.close()

    async def waiter(k: int) -> None:
        try:
            tr, c = await loop.create_connection(keepalive, "127.0.0.1", port)
        except OSError as e:
            stats["waiting connect errors"] += 1
            stats.setdefault("waiting connect error", str(e))
            return
        t = time.monotonic()
        fut = c.request(
            f"POST /v1/workflows/nap/executions?wait=true&id=nap-{k}"
            f"&timeout_ms=60000 HTTP/1.1\r\nHost: x\r\nContent-Length: 2"
            f"\r\n\r\n{{}}".encode())
        try:
            status, _, body = await fut
            key = "completed" if status == 201 and \
                b'"status":"completed"' in body else f"{status}"
            stats[f"waiting answered {key}"] += 1
            stats["waiting answer after"].append(time.monotonic() - t)
        except (OSError, ConnectionError) as e:
            stats[f"waiting {type(e).__name__}"] += 1
        tr.close()

    tasks = [asyncio.ensure_future(slow(k)) for k in range(args.slow)]
    tasks += [asyncio.ensure_future(idle(k)) for k in range(args.idle)]
    tasks += [asyncio.ensure_future(waiter(k)) for k in range(args.waiting)]
    stats["tasks"] = tasks
    await asyncio.gather(*tasks, return_exceptions=True)


def run_connections(args) -> int:
    quick = ("name: quick\nsteps:\n  - name: a\n    set: { x: \"input.x\" }\n"
             "  - name: b\n    set: { y: \"steps.a.x\" }\noutput: \"steps.b\"\n")
    nap = (f"name: nap\nsteps:\n  - name: nap\n    sleep: {args.nap_s}s\n"
           "output: \"1\"\n")
    with node(args.bin, {"quick.yaml": quick, "nap.yaml": nap},
              prefix="connections-") as n:
        print(f"load average before: {loadavg()}; open files limit: node "
              f"{open_files_limit(n.pid)}")
        port = n.http_port
        idle_st = proc_status(n.pid)
        h0, s0, e0 = measure(port, args.samples, "before")
        print(f"before the load ({args.samples} each, a new connection per "
              f"request): health {pct(h0)}; start+wait {pct(s0)}; errors "
              f"{len(e0)}")
        for e in e0[:3]:
            print("  " + e)
        cpu0 = thread_cpu(n.pid)
        s = sampler(n.pid)
        s.start()
        stats: dict = collections.defaultdict(int)
        stats["slow cut after"], stats["waiting answer after"] = [], []
        box: dict = {}

        def load_thread() -> None:
            async def main() -> None:
                box["loop"] = asyncio.get_running_loop()
                box["stop"] = asyncio.Event()
                await hold_load(args, port, box["stop"], stats)
            asyncio.run(main())

        lt = threading.Thread(target=load_thread, daemon=True)
        lt.start()
        t0 = time.monotonic()
        time.sleep(args.settle_s)
        threads_loaded, rss_loaded = proc_status(n.pid)
        conns = count_conns(port)
        print(f"after {args.settle_s} s of load: node threads "
              f"{threads_loaded}, RSS {rss_loaded / 1024:.0f} MiB, "
              f"established connections to the HTTP port {conns}; "
              f"load average {loadavg()}")
        # Spread over the load, until 5 s before the waiting starts end.
        gap = max(0.1, (args.nap_s - args.settle_s - 5) / args.samples)
        h1, s1, e1 = measure(port, args.samples, "during", gap)
        during_s = time.monotonic() - t0
        print(f"during the load ({args.slow} slowloris, {args.idle} idle, "
              f"{args.waiting} waiting; measured {args.settle_s:.0f}-"
              f"{during_s:.0f} s into it): health {pct(h1)}; start+wait "
              f"{pct(s1)}; errors {len(e1)}")
        for e in e1[:5]:
            print("  " + e)
        # Let the waiting starts end (their sleep) before stopping the load.
        left = args.nap_s + 15 - (time.monotonic() - t0)
        while left > 0 and sum(v for k, v in stats.items()
                               if k.startswith("waiting ")
                               and isinstance(v, int)) < args.waiting:
            time.sleep(0.5)
            left -= 0.5
        box["loop"].call_soon_threadsafe(box["stop"].set)
        lt.join(30)
        s.finish()
        print(f"load held {time.monotonic() - t0:.1f} s")
        for k in sorted(stats):
            v = stats[k]
            if k == "tasks":
                continue
            if isinstance(v, list):
                print(f"  {k}: {len(v)} ({pct(v)})" if v else f"  {k}: none")
            else:
                print(f"  {k}: {v}")
        node_figures(n, idle_st, s, cpu0)
        ok = not e1 and stats["waiting answered completed"] == args.waiting
        return 0 if ok else 1


def count_conns(port: int) -> int:
    """Established TCP connections whose local port is `port` (the node's
    side), from /proc/net/tcp."""
    n = 0
    hexport = f":{port:04X}"
    for f in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(f) as fh:
                next(fh)
                for line in fh:
                    parts = line.split()
                    if parts[1].endswith(hexport) and parts[3] == "01":
                        n += 1
        except OSError:
            pass
    return n


# -- polls ---------------------------------------------------------------------

async def run_polls_client(args, n: node, idle_st) -> int:
    import grpc
    from cerebelum_pb import worker_pb2, worker_pb2_grpc

    channels = [grpc.aio.insecure_channel(
        n.grpc_addr, options=[("grpc.use_local_subchannel_pool", 1),
                              ("grpc.channel_id_probe", k)])
        for k in range(args.channels)]
    stubs = [worker_pb2_grpc.WorkerServiceStub(c) for c in channels]
    per_worker = (args.polls + args.workers - 1) // args.workers
    workers = [f"probe-w{k}" for k in range(args.workers)]
    for k, w in enumerate(workers):
        r = await stubs[k % len(stubs)].Register(worker_pb2.RegisterRequest(
            worker_id=w, queues=["probe"], max_in_flight=per_worker))
    print(f"registered {args.workers} workers on queue probe, max_in_flight "
          f"{per_worker} each (lease {r.lease_timeout_ms} ms)")
    got: list = []          # (poll index, task, answered monotonic)
    empty, errors = [0], []
    t_sent = time.monotonic()

    # Complete each task (the worker that polled it).
    async def complete(k: int, task) -> None:
        try:
            await stubs[k % len(stubs)].CompleteTask(
                worker_pb2.CompleteTaskRequest(
                    worker_id=workers[k % args.workers],
                    attempt_token=task.attempt_token,
                    result_json=json.dumps({"done": json.loads(
                        task.input_json)})))
        except grpc.aio.AioRpcError as e:
            errors.append(f"complete {task.execution_id}: {e.code().name} "
                          f"{e.details()}")


    async def one(k: int) -> None:
        stub = stubs[k % len(stubs)]
        try:
            res = await stub.PollTask(worker_pb2.PollTaskRequest(
                worker_id=workers[k % args.workers], queues=["probe"],
                wait_ms=args.poll_wait_s * 1000), timeout=args.poll_wait_s + 10)
            if res.HasField("task"):
                got.append((k, res.task, time.time()))
                # As a worker would: complete it at once (within its lease).
                await complete(k, res.task)
            else:
                empty[0] += 1
        except grpc.aio.AioRpcError as e:
            if e.code() != grpc.StatusCode.CANCELLED:
                errors.append(f"poll {k}: {e.code().name} {e.details()}")

    s = sampler(n.pid)
    s.start()
    cpu0 = thread_cpu(n.pid)
    polls = [asyncio.ensure_future(one(k)) for k in range(args.polls)]
    await asyncio.sleep(args.hold_s)
    th, rss = proc_status(n.pid)
    cpu_hold = thread_cpu(n.pid)
    print(f"{args.polls} polls sent over {args.channels} connections and held "
          f"{args.hold_s} s: node threads {th} (at most {s.threads} so far), "
          f"RSS {rss / 1024:.0f} MiB; node CPU while sending and holding: "
          f"{cpu_used(cpu0, cpu_hold)}; answered so far: {len(got)} with a "
          f"task, {empty[0]} empty, {len(errors)} errors; load average "
          f"{loadavg()}")
    for e in errors[:5]:
        print("  " + e)

    # Tasks arrive: start executions over HTTP (no wait).
    loop = asyncio.get_running_loop()
    started_at = {}

    async def start(i: int, conn) -> None:
        st, _, body = await conn.request(
            f"POST /v1/workflows/polled/executions?id=p-{i} HTTP/1.1\r\n"
            f"Host: x\r\nContent-Length: {len(str(i)) + 7}\r\n\r\n"
            f'{{"i": {i}}}'.encode())
        if st != 201:
            errors.append(f"start p-{i}: {st} {body[:120]!r}")
        else:
            started_at[f"p-{i}"] = json.loads(body)["execution"][
                "created_at_ms"] / 1000

    conns = [(await loop.create_connection(keepalive, "127.0.0.1",
                                           n.http_port))[1] for _ in range(16)]
    t_start = time.monotonic()
    await asyncio.gather(*(start(i, conns[i % len(conns)])
                           for i in range(args.tasks)))
    started_s = time.monotonic() - t_start
    deadline = time.monotonic() + 60
    while len(got) < args.tasks and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    all_s = time.monotonic() - t_start
    lat = [at - started_at[t.execution_id] for _, t, at in got
           if t.execution_id in started_at]
    dup = len(got) - len({t.execution_id for _, t, _ in got})
    print(f"{args.tasks} executions started in {started_s:.2f} s; polls "
          f"answered with a task: {len(got)} ({dup} duplicates) "
          f"{all_s:.2f} s after the first start; execution created (its "
          f"created_at) -> poll answered: {pct(lat)}")

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        f = finished(n.http_port, "polled")
        if sum(f.values()) >= args.tasks:
            break
        await asyncio.sleep(0.5)
    print(f"executions terminal: {dict(f)} ({args.tasks} started)")
    # A poll that got a task is answered even while its CompleteTask runs.
    waiting = args.polls - len(got) - empty[0] - sum(
        1 for e in errors if e.startswith("poll "))
    th2, _ = proc_status(n.pid)
    print(f"polls still waiting: {waiting}; answered empty: {empty[0]}; "
          f"errors: {len(errors)}; node threads now {th2}")
    for e in errors[:5]:
        print("  " + e)
    for p in polls:
        p.cancel()
    await asyncio.gather(*polls, return_exceptions=True)
    for c in conns:
        c.transport.close()
    await asyncio.sleep(2)
    s.finish()
    th3, rss3 = proc_status(n.pid)
    print(f"after cancelling the polls: node threads {th3}, RSS "
          f"{rss3 / 1024:.0f} MiB")
    node_figures(n, idle_st, s, cpu0)
    for c in channels:
        await c.close()
    ok = (not errors and len(got) == args.tasks and dup == 0
          and f.get("completed", 0) == args.tasks
          and waiting == args.polls - args.tasks)
    return 0 if ok else 1


def run_polls(args) -> int:
    sys.path.insert(0, args.stubs)
    polled = ("name: polled\nversion: \"1\"\nsteps:\n  - name: work\n"
              "    task: probe.work\n    queue: probe\n"
              "    input: { i: \"input.i\" }\noutput: \"steps.work\"\n")
    with node(args.bin, {"polled.yaml": polled}, prefix="polls-") as n:
        print(f"load average before: {loadavg()}; open files limit: node "
              f"{open_files_limit(n.pid)}")
        idle_st = proc_status(n.pid)
        print(f"node idle: threads {idle_st[0]}, RSS "
              f"{idle_st[1] / 1024:.0f} MiB")
        return asyncio.run(run_polls_client(args, n, idle_st))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bin", default=os.path.join(ROOT, "build/src/cerebelum"))
    p.add_argument("--stubs",
                   default=os.path.join(ROOT, "build/tests/python/stubs"))
    sub = p.add_subparsers(dest="probe", required=True)
    f = sub.add_parser("flood", help="100,000 starts offered in 60 s")
    f.add_argument("--starts", type=int, default=100_000)
    f.add_argument("--seconds", type=float, default=60)
    f.add_argument("--sleep-ms", type=int, default=0)
    f.add_argument("--step-timeout", default="2s")
    f.add_argument("--initial-conns", type=int, default=64)
    f.add_argument("--max-conns", type=int, default=9000)
    f.add_argument("--drain-s", type=float, default=600)
    c = sub.add_parser("connections", help="slowloris + idle + waiting")
    c.add_argument("--slow", type=int, default=300)
    c.add_argument("--idle", type=int, default=1000)
    c.add_argument("--waiting", type=int, default=1000)
    c.add_argument("--nap-s", type=int, default=40)
    c.add_argument("--samples", type=int, default=50)
    c.add_argument("--settle-s", type=float, default=5)
    q = sub.add_parser("polls", help="10,000 gRPC long-polls")
    q.add_argument("--polls", type=int, default=10_000)
    q.add_argument("--workers", type=int, default=10)
    q.add_argument("--channels", type=int, default=20)
    q.add_argument("--poll-wait-s", type=int, default=120)
    q.add_argument("--hold-s", type=float, default=15)
    q.add_argument("--tasks", type=int, default=50)
    args = p.parse_args()
    nofile = raise_nofile()
    print(f"probe {args.probe}, binary {args.bin}, client open files limit "
          f"{nofile}, {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}")
    return {"flood": run_flood, "connections": run_connections,
            "polls": run_polls}[args.probe](args)


if __name__ == "__main__":
    sys.exit(main())
