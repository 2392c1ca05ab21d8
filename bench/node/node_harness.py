"""What the probes under bench/node/ share: starting a real `cerebelum node`
(embedded SQLite, durable commits) on free ports in a temporary directory,
and sampling its threads, RSS and CPU time from /proc.

Used by many_waiters.py and front_end_load.py (standard library only).
"""

from __future__ import annotations

import os
import resource
import shutil
import socket
import subprocess
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raise_nofile() -> int:
    """Raises this process's RLIMIT_NOFILE soft limit to its hard limit;
    returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


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


def open_files_limit(pid: int) -> str:
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                return line.split()[3]
    return "?"


def thread_cpu(pid: int) -> dict[int, tuple[str, float]]:
    """CPU seconds (user + system) of each thread of `pid`, with its name."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        out[int(tid)] = (name, (int(fields[11]) + int(fields[12])) / tick)
    return out


def cpu_used(before: dict[int, tuple[str, float]],
             after: dict[int, tuple[str, float]]) -> str:
    """The node's CPU time between two thread_cpu samples, and its busiest
    threads."""
    used = sorted(((cpu - before.get(tid, ("", 0.0))[1], name, tid)
                   for tid, (name, cpu) in after.items()), reverse=True)
    top = ", ".join(f"{name}/{tid} {cpu:.2f}" for cpu, name, tid in used[:4]
                    if cpu > 0)
    return f"{sum(u[0] for u in used):.2f} s (busiest threads, s: {top})"


class sampler(threading.Thread):
    """Peak threads and RSS (KiB) of `pid`, sampled every 50 ms."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.stop, self.threads, self.rss = pid, False, 0, 0
        self.rss_at = 0.0  # seconds after the sampler started

    def run(self) -> None:
        t0 = time.monotonic()
        while not self.stop:
            try:
                t, r = proc_status(self.pid)
            except OSError:
                return
            if r > self.rss:
                self.rss, self.rss_at = r, time.monotonic() - t0
            self.threads = max(self.threads, t)
            time.sleep(0.05)

    def finish(self) -> None:
        self.stop = True
        self.join()


def pct(xs: list[float]) -> str:
    """p50 / p99 / max of seconds, in ms."""
    if not xs:
        return "none"
    xs = sorted(xs)
    q = lambda p: xs[min(len(xs) - 1, int(p * len(xs)))] * 1000
    return (f"p50 {q(0.5):.1f} ms, p99 {q(0.99):.1f} ms, "
            f"max {xs[-1] * 1000:.1f} ms")


class node:
    """A real node in a temporary data directory, with `workflows` (file
    name -> text) loaded; gRPC always on, HTTP when `http`. Use as a context
    manager; `grpc_addr`, `http_port`, `pid`, `complaints` (its warnings and
    errors) and `log_tail` (its last log lines) are set once it is ready."""

    def __init__(self, binary: str, workflows: dict[str, str], *,
                 http: bool = True, extra_args: list[str] | None = None,
                 prefix: str = "node-probe-"):
        self.binary, self.workflows, self.http = binary, workflows, http
        self.extra_args = extra_args or []
        self.prefix = prefix
        self.complaints: list[str] = []
        self.log_tail: list[str] = []

    def __enter__(self) -> "node":
        self.data = tempfile.mkdtemp(prefix=self.prefix)
        flows = os.path.join(self.data, "flows")
        os.makedirs(flows)
        for name, text in self.workflows.items():
            with open(os.path.join(flows, name), "w") as f:
                f.write(text)
        self.grpc_addr = f"127.0.0.1:{free_port()}"
        self.http_port = free_port() if self.http else 0
        self.proc = subprocess.Popen(
            [self.binary, "node", "--data-dir",
             os.path.join(self.data, "node"), "--workflows", flows, "--listen",
             self.grpc_addr, "--http",
             f"127.0.0.1:{self.http_port}" if self.http else "",
             *self.extra_args],
            stderr=subprocess.PIPE, text=True, preexec_fn=raise_nofile)
        self.pid = self.proc.pid
        try:
            for line in self.proc.stderr:
                if "node ready" in line:
                    break
            else:
                raise RuntimeError("the node did not start")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        threading.Thread(target=self._read_log, daemon=True).start()
        return self

    def _read_log(self) -> None:
        # The level is the second field of the node's text log lines.
        for line in self.proc.stderr:
            line = line.rstrip()
            self.log_tail.append(line)
            if len(self.log_tail) > 200:
                del self.log_tail[:100]
            level = line.split(" ", 2)[1:2]
            if level and level[0] in ("warning", "warn", "error", "critical"):
                self.complaints.append(line)

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.data, ignore_errors=True)

    def print_complaints(self, n: int = 5) -> None:
        print(f"node log: {len(self.complaints)} warnings or errors")
        for line in self.complaints[:n]:
            print("  " + line[:300])
