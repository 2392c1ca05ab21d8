#!/usr/bin/env python3
"""The chaos suite (tests/chaos/README.md): a real `cerebelum node`, two
Python workers and one C++ worker under a mixed workload (about 3 starts/s
over HTTP, a scripted approver), while a seeded nemesis kills and stops
processes. Then, with faults stopped, checker.py proves from the histories
and the workers' side-effect logs that nothing was lost or recorded twice.

    chaos.py --store sqlite|pg --seed 12 --seconds 60 \\
        --faults node-kill,node-stop,worker-kill \\
        --node-bin build/src/cerebelum \\
        --cpp-worker-bin build/tests/chaos/chaos_cpp_worker

Faults: node-kill (kill -9, restart), node-stop (SIGSTOP 3.5-5 s, past the
3 s lease of the task steps, then SIGCONT), worker-kill (kill -9 of a
worker, restart), pg-restart (PostgreSQL stopped as by a crash and started
on the same port; only with --store pg, always on an own throwaway
server),
def-edit (a sleep step of a workflow renamed in the YAML, the node
restarted with SIGTERM as a deploy does).

Exit codes: 0 clean, 1 findings, 2 harness error, 77 skipped (no
PostgreSQL for --store pg).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))
import checker  # noqa: E402
from checker import approves  # noqa: E402

FAULTS = ("node-kill", "node-stop", "worker-kill", "pg-restart", "def-edit")
TERMINAL = ("completed", "failed", "cancelled")


class HarnessError(Exception):
    """The harness could not do its part (exit 2)."""


def log(msg: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Http:
    def __init__(self, port: int):
        self.base = f"http://127.0.0.1:{port}"

    def call(self, method: str, path: str, body=None, timeout: float = 5.0):
        """(status, parsed body); raises OSError when the node is away."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data,
                                     method=method)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            try:
                return e.code, json.loads(e.read() or b"null")
            except ValueError:
                return e.code, None

    def list_all(self, query: str = "") -> list:
        out, token = [], ""
        while True:
            status, body = self.call(
                "GET", f"/v1/executions?page_size=500&page_token={token}"
                + query, timeout=20)
            if status != 200:
                raise OSError(f"list answered {status}: {body}")
            out += body["executions"]
            token = body.get("next_page_token", "")
            if not token:
                return out


class Node:
    """`cerebelum node` on fixed ports, restartable on the same data."""

    def __init__(self, binary: str, run_dir: Path, store: str,
                 workflows: Path):
        self.binary = binary
        self.run_dir = run_dir
        self.store = store
        self.workflows = workflows
        self.grpc_port = free_port()
        self.http_port = free_port()
        self.caf_port = free_port()
        self.http = Http(self.http_port)
        self.log_path = run_dir / "node.log"
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.lock = threading.Lock()

    def start(self, timeout: float = 60.0) -> None:
        for attempt in range(5):
            with open(self.log_path, "ab") as out:
                self.proc = subprocess.Popen(
                    [self.binary, "node", "--data-dir",
                     str(self.run_dir / "data"), "--store", self.store,
                     "--workflows", str(self.workflows),
                     "--listen", f"127.0.0.1:{self.grpc_port}",
                     "--http", f"127.0.0.1:{self.http_port}",
                     "--caf-port", str(self.caf_port)],
                    stdout=out, stderr=subprocess.STDOUT)
            self.starts += 1
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    status, _ = self.http.call("GET", "/v1/workflows",
                                               timeout=2)
                    if status == 200:
                        return
                except OSError:
                    pass
                time.sleep(0.1)
            code = self.proc.poll()
            if code is None:
                self.proc.kill()
                self.proc.wait()
            log(f"node did not get ready (attempt {attempt + 1}, "
                f"exit {code}); trying again")
            time.sleep(1)
        raise HarnessError(f"the node did not start; see {self.log_path}")

    def signal(self, sig: int) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def kill9(self) -> None:
        self.signal(signal.SIGKILL)
        if self.proc:
            self.proc.wait()

    def stop(self, timeout: float = 30.0) -> int | None:
        if not self.proc:
            return None
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None

    def log_lines(self) -> int:
        try:
            with open(self.log_path, "rb") as f:
                return sum(1 for _ in f)
        except OSError:
            return 0


class Worker:
    """A worker process that is started again whenever it exits."""

    def __init__(self, name: str, argv: list, env: dict, run_dir: Path):
        self.name = name
        self.argv = argv
        self.env = env
        self.out = run_dir / f"{name}.out"
        self.proc: subprocess.Popen | None = None
        self.lock = threading.Lock()
        self.stopping = False
        self.broken = ""
        self.spawns = 0
        self.quick_exits = 0  # in a row, without being killed by us
        self.killed = False
        self.thread = threading.Thread(target=self._run, daemon=True)

    def begin(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        while not self.stopping:
            with self.lock:
                if self.stopping:
                    return
                with open(self.out, "ab") as out:
                    self.proc = subprocess.Popen(
                        self.argv, env=self.env, stdout=out,
                        stderr=subprocess.STDOUT)
                self.spawns += 1
            began = time.monotonic()
            code = self.proc.wait()
            quick = time.monotonic() - began < 2.0 and not self.killed
            self.quick_exits = self.quick_exits + 1 if quick else 0
            self.killed = False
            if self.quick_exits >= 5 and code != 0:
                self.broken = (f"worker {self.name} exits at once (code "
                               f"{code}); see {self.out}")
            time.sleep(0.5)

    def kill9(self) -> None:
        with self.lock:
            if self.proc and self.proc.poll() is None:
                self.killed = True
                self.proc.kill()

    def stop(self) -> None:
        with self.lock:
            self.stopping = True
            proc = self.proc
        if proc and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.thread.join(5)


class Postgres:
    """A database for the run: a fresh one inside CEREBELUM_TEST_PG, or an
    own throwaway server (always when pg-restart is among the faults)."""

    def __init__(self, run_dir: Path, own: bool):
        self.script = ROOT / "scripts" / "pg-throwaway.sh"
        self.dir = None
        self.admin = os.environ.get("CEREBELUM_TEST_PG", "")
        self.db = ""
        if own or not self.admin:
            if not list(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
                raise SkipRun("no PostgreSQL server binaries and "
                              "CEREBELUM_TEST_PG is not set")
            self.dir = Path(tempfile.mkdtemp(prefix="cerebelum-chaos-pg."))
            os.chmod(self.dir, 0o755)
            self.dir = self.dir / "pg"
            r = subprocess.run([str(self.script), "start", str(self.dir)],
                               capture_output=True, text=True)
            if r.returncode != 0:
                raise HarnessError(f"pg-throwaway.sh start: {r.stderr}")
            self.admin = r.stdout.strip()
        self.db = f"chaos_{os.getpid()}_{int(time.time())}"
        self.psql(f"CREATE DATABASE {self.db}", admin=True)
        self.conn = re.sub(r"dbname=\S+", "", self.admin).strip() \
            + f" dbname={self.db}"

    def psql(self, sql: str, admin: bool = False) -> str:
        conn = self.admin if admin else self.conn
        r = subprocess.run(["psql", conn, "-v", "ON_ERROR_STOP=1", "-Atc",
                            sql], capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise HarnessError(f"psql: {r.stderr.strip()}")
        return r.stdout

    def stop_server(self) -> None:
        subprocess.run([str(self.script), "stop-server", str(self.dir),
                        "immediate"], check=True)

    def start_server(self) -> None:
        subprocess.run([str(self.script), "start-server", str(self.dir)],
                       check=True)

    def close(self) -> None:
        if self.dir:
            subprocess.run([str(self.script), "stop", str(self.dir)])
            shutil.rmtree(self.dir.parent, ignore_errors=True)
        else:
            try:
                self.psql(f"DROP DATABASE IF EXISTS {self.db} WITH (FORCE)",
                          admin=True)
            except HarnessError as e:
                log(f"could not drop {self.db}: {e}")


class SkipRun(Exception):
    pass


class Run:
    def __init__(self, args):
        self.args = args
        self.seed = args.seed
        self.faults = [f for f in args.faults.split(",") if f]
        for f in self.faults:
            if f not in FAULTS:
                raise HarnessError(f"unknown fault '{f}' (known: "
                                   f"{', '.join(FAULTS)})")
        if "pg-restart" in self.faults and args.store != "pg":
            log("pg-restart does not apply to SQLite: left out")
            self.faults.remove("pg-restart")
        self.run_dir = Path(args.run_dir or tempfile.mkdtemp(
            prefix="cerebelum-chaos."))
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.tag = f"c{self.seed}-{os.getpid() % 10000}"
        self.workflows = self.run_dir / "workflows"
        shutil.rmtree(self.workflows, ignore_errors=True)
        shutil.copytree(HERE / "workflows", self.workflows)
        self.pg: Postgres | None = None
        self.starts: dict[str, dict] = {}
        self.starts_lock = threading.Lock()
        self.fault_log: list[dict] = []
        self.decisions: dict[str, str] = {}
        self.stop_load = threading.Event()
        self.stop_nemesis = threading.Event()
        self.node_lock = threading.Lock()  # one fault on the node at a time
        self.edits = 0

    # -- setup -------------------------------------------------------------

    def setup(self) -> None:
        store = "sqlite"
        if self.args.store == "pg":
            self.pg = Postgres(self.run_dir, own="pg-restart" in self.faults)
            store = self.pg.conn
        self.node = Node(self.args.node_bin, self.run_dir, store,
                         self.workflows)
        self.node.start()
        log(f"node up: HTTP {self.node.http_port}, gRPC "
            f"{self.node.grpc_port}, CAF {self.node.caf_port}, store "
            f"{self.args.store}, run dir {self.run_dir}")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(ROOT / "sdk" / "python")]
            + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
        self.workers = []
        for i in (1, 2):
            name = f"py-{i}"
            self.workers.append(Worker(name, [
                sys.executable, str(HERE / "chaos_py_worker.py"),
                "--server", f"127.0.0.1:{self.node.grpc_port}",
                "--id", name, "--log",
                str(self.run_dir / f"effects-{name}.jsonl")], env,
                self.run_dir))
        self.workers.append(Worker("cpp-1", [
            self.args.cpp_worker_bin, "--port", str(self.node.caf_port),
            "--id", "cpp-1", "--log",
            str(self.run_dir / "effects-cpp-1.jsonl")], env, self.run_dir))
        for w in self.workers:
            w.begin()

    # -- workload ------------------------------------------------------------

    def make_input(self, rng: random.Random, k: int):
        pick = rng.random()
        if pick < 0.5:
            return "chaos_pipeline", {"n": rng.randint(0, 1000),
                                      "flaky": rng.random() < 0.3,
                                      "sleep_ms": rng.randint(0, 3000)}
        if pick < 0.75:
            return "chaos_map", {"xs": [rng.randint(-50, 50) for _ in
                                        range(rng.randint(1, 6))]}
        return "chaos_approval", {"amount": rng.randint(1, 500),
                                  "sleep_ms": rng.randint(0, 2000)}

    def start_one(self, eid: str, workflow: str, inp: dict) -> None:
        """Starts one execution, retrying until the node acknowledges it
        (the id makes a retried start idempotent)."""
        rec = self.starts[eid]
        deadline = time.time() + self.args.start_timeout
        while time.time() < deadline:
            rec["tries"] += 1
            try:
                status, body = self.node.http.call(
                    "POST", f"/v1/workflows/{workflow}/executions?id={eid}",
                    inp, timeout=3)
                if status in (200, 201):
                    rec["acked_at"] = time.time()
                    return
                if status == 429:
                    # Over capacity (e.g. the writer's oldest append waited
                    # through a SIGSTOP): retry after its hint, as a client
                    # should.
                    hint = body.get("error", {}).get("retry_after_ms", 1000) \
                        if isinstance(body, dict) else 1000
                    rec["overloaded"] = rec.get("overloaded", 0) + 1
                    time.sleep(min(hint, 5000) / 1000.0)
                    continue
                if status < 500:
                    rec["refused"] = f"{status} {body}"
                    return
            except OSError:
                pass
            time.sleep(0.5)

    def load(self) -> None:
        rng = random.Random(self.seed * 7919 + 1)
        period = 1.0 / self.args.rate
        k = 0
        next_at = time.monotonic()
        with ThreadPoolExecutor(16) as pool:
            while not self.stop_load.is_set():
                workflow, inp = self.make_input(rng, k)
                eid = f"{self.tag}-{k:05d}"
                with self.starts_lock:
                    self.starts[eid] = {"workflow": workflow, "input": inp,
                                        "first_try": time.time(),
                                        "tries": 0}
                pool.submit(self.start_one, eid, workflow, inp)
                k += 1
                next_at += period
                self.stop_load.wait(max(0.0, next_at - time.monotonic()))

    def approver(self) -> None:
        while not self.approver_stop.is_set():
            try:
                waiting = self.node.http.list_all(
                    "&status=awaiting_approval&workflow=chaos_approval")
                for ex in waiting:
                    eid = ex["execution_id"]
                    if eid not in self.starts:
                        continue
                    if approves(eid):
                        path, body = "approve", {"by": "chaos-approver",
                                                 "data": {"ok": True}}
                    else:
                        path, body = "reject", {"by": "chaos-approver",
                                                "reason": "scripted"}
                    status, _ = self.node.http.call(
                        "POST", f"/v1/executions/{eid}/{path}", body)
                    if status == 200:
                        self.decisions[eid] = path
            except (OSError, KeyError, ValueError):
                pass
            self.approver_stop.wait(0.5)

    # -- nemesis ---------------------------------------------------------------

    def nemesis(self) -> None:
        rng = random.Random(self.seed)
        self.stop_nemesis.wait(rng.uniform(3, 6))
        while not self.stop_nemesis.is_set() and self.faults:
            kind = rng.choice(self.faults)
            fault = {"kind": kind, "start": time.time()}
            try:
                getattr(self, "fault_" + kind.replace("-", "_"))(rng, fault)
            except Exception as e:  # noqa: BLE001 -- reported, run goes on
                fault["error"] = repr(e)
                log(f"fault {kind} failed: {e!r}")
            fault["end"] = time.time()
            self.fault_log.append(fault)
            log(f"fault {kind} {fault.get('detail', '')} "
                f"({fault['end'] - fault['start']:.1f} s)")
            self.stop_nemesis.wait(rng.uniform(4, 9))

    def fault_node_kill(self, rng, fault) -> None:
        with self.node_lock:
            self.node.kill9()
            down = rng.uniform(0.5, 2.0)
            fault["detail"] = f"down {down:.1f} s"
            time.sleep(down)
            self.node.start()

    def fault_node_stop(self, rng, fault) -> None:
        with self.node_lock:
            pause = rng.uniform(3.5, 5.0)
            fault["detail"] = f"stopped {pause:.1f} s"
            self.node.signal(signal.SIGSTOP)
            time.sleep(pause)
            self.node.signal(signal.SIGCONT)

    def fault_worker_kill(self, rng, fault) -> None:
        w = rng.choice(self.workers)
        fault["detail"] = w.name
        fault["worker"] = w.name
        w.kill9()

    def fault_pg_restart(self, rng, fault) -> None:
        down = rng.uniform(3.0, 10.0)
        fault["detail"] = f"down {down:.1f} s"
        self.pg.stop_server()
        time.sleep(down)
        self.pg.start_server()

    def fault_def_edit(self, rng, fault) -> None:
        """Renames the sleep step of a workflow (a deploy that changes the
        definition) and restarts the node with SIGTERM."""
        name, step = rng.choice([("chaos_pipeline", "nap"),
                                 ("chaos_approval", "cool_down")])
        path = self.workflows / f"{name}.yaml"
        text = path.read_text()
        self.edits += 1
        new = re.sub(rf"- name: {step}(_e\d+)?\n",
                     f"- name: {step}_e{self.edits}\n", text)
        if new == text:
            raise HarnessError(f"step {step} not found in {path}")
        path.write_text(new)
        fault["detail"] = f"{name}: {step} renamed {step}_e{self.edits}"
        with self.node_lock:
            self.node.stop()
            self.node.start()

    # -- the run ---------------------------------------------------------------

    def wait_quiescent(self) -> int:
        """Waits until every acknowledged start is terminal; answers how
        many are not when the time is up."""
        deadline = time.time() + self.args.quiesce_timeout
        left = -1
        while time.time() < deadline:
            try:
                states = {e["execution_id"]: e["status"]
                          for e in self.node.http.list_all()}
            except OSError:
                time.sleep(1)
                continue
            left = sum(1 for eid, rec in self.starts.items()
                       if "acked_at" in rec
                       and states.get(eid) not in TERMINAL)
            if left == 0:
                return 0
            time.sleep(1)
        return left

    def run(self) -> int:
        t0 = time.time()
        self.setup()
        self.approver_stop = threading.Event()
        threads = [threading.Thread(target=f, daemon=True)
                   for f in (self.load, self.nemesis, self.approver)]
        for t in threads:
            t.start()
        end = time.monotonic() + self.args.seconds
        while time.monotonic() < end:
            time.sleep(0.5)
            for w in self.workers:
                if w.broken:
                    raise HarnessError(w.broken)
        self.stop_load.set()
        self.stop_nemesis.set()
        threads[0].join()
        threads[1].join()
        workload_end = time.time()
        log(f"workload over: {len(self.starts)} starts, "
            f"{len(self.fault_log)} faults; waiting for quiescence")
        left = self.wait_quiescent()
        quiet = time.time()
        log(f"quiescent after {quiet - workload_end:.1f} s"
            if left == 0 else f"{left} executions still not terminal after "
            f"{self.args.quiesce_timeout} s")
        self.approver_stop.set()
        threads[2].join()
        run = {
            "seed": self.seed, "store": self.args.store,
            "faults_enabled": self.faults, "seconds": self.args.seconds,
            "started_at": t0, "workload_end": workload_end,
            "quiescent_at": quiet, "tag": self.tag,
            "starts": self.starts, "faults": self.fault_log,
            "decisions": self.decisions, "node_starts": self.node.starts,
            "worker_spawns": {w.name: w.spawns for w in self.workers},
        }
        (self.run_dir / "run.json").write_text(json.dumps(run, indent=1))
        store = checker.SqliteStore(self.run_dir / "data") \
            if self.args.store == "sqlite" else checker.PgStore(self.pg.psql)
        report = checker.check(run, self.node.http, store,
                               sorted(self.run_dir.glob("effects-*.jsonl")))
        for w in self.workers:
            w.stop()
        code = self.node.stop()
        report.figures["node exit code at the end (SIGTERM)"] = code
        report.figures["node log lines"] = self.node.log_lines()
        report.figures["node starts"] = self.node.starts
        report.figures["run time (s)"] = round(time.time() - t0, 1)
        report.print()
        (self.run_dir / "report.json").write_text(json.dumps(
            {"figures": report.figures, "findings": report.findings},
            indent=1, default=str))
        return 1 if report.findings else 0

    def close(self) -> None:
        for w in getattr(self, "workers", []):
            w.stop()
        node = getattr(self, "node", None)
        if node:
            node.stop()
        if self.pg:
            self.pg.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--store", choices=("sqlite", "pg"), default="sqlite")
    p.add_argument("--seed", type=int, default=12)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--faults", default="node-kill,node-stop,worker-kill",
                   help=f"comma-separated, of: {', '.join(FAULTS)}")
    p.add_argument("--rate", type=float, default=3.0,
                   help="starts per second")
    p.add_argument("--node-bin", default=str(ROOT / "build/src/cerebelum"))
    p.add_argument("--cpp-worker-bin",
                   default=str(ROOT / "build/tests/chaos/chaos_cpp_worker"))
    p.add_argument("--run-dir", help="default: a new temporary directory")
    p.add_argument("--keep", action="store_true",
                   help="keep the run directory even when clean")
    p.add_argument("--start-timeout", type=float, default=120)
    p.add_argument("--quiesce-timeout", type=float, default=180)
    args = p.parse_args()
    for b in (args.node_bin, args.cpp_worker_bin):
        if not os.access(b, os.X_OK):
            print(f"error: {b} is not an executable (build it first)",
                  file=sys.stderr)
            return 2
    run = None
    try:
        run = Run(args)
        code = run.run()
    except SkipRun as e:
        print(f"skipped: {e}")
        return 77
    except HarnessError as e:
        print(f"harness error: {e}", file=sys.stderr)
        code = 2
    except Exception as e:  # noqa: BLE001 -- any other failure of ours
        import traceback
        traceback.print_exc()
        print(f"harness error: {e!r}", file=sys.stderr)
        code = 2
    finally:
        if run:
            run.close()
    if run:
        if code == 0 and not args.keep and not args.run_dir:
            shutil.rmtree(run.run_dir, ignore_errors=True)
        else:
            log(f"run dir kept: {run.run_dir}")
    return code


if __name__ == "__main__":
    sys.exit(main())
