"""Many clients waiting for executions hold no node threads: 500 concurrent
WaitForResult calls over gRPC on a sleeping execution, against the real node
binary ($CEREBELUM_BIN); the node's thread count stays flat and every wait
ends with the finished execution. The same for 2,000 concurrent starts
(StartExecution awaits its commit holding no thread)."""

import contextlib
import os
import tempfile
import threading
import time
import unittest

from cerebelum import Client, _pb
from node_process import NodeProcess

WORKFLOW = """\
name: napper
steps:
  - name: nap
    sleep: 3s
  - name: done
    log: "done"
"""

WAITERS = 500
STARTS = 2000


def threads_of(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    raise AssertionError("no Threads line")


@contextlib.contextmanager
def napper_node(workflow: str = WORKFLOW):
    """A real node with `workflow` loaded, and a client of it."""
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "napper.yaml"), "w") as f:
            f.write(workflow)
        node = NodeProcess(os.environ.get("CEREBELUM_BIN", ""), d)
        try:
            with Client(node.address) as c:
                yield node, c
        finally:
            node.stop()


class ManyWaiters(unittest.TestCase):
    def test_waits_hold_no_threads(self):
        with napper_node() as (node, c):
            ex = c.start("napper", {})
            before = threads_of(node.proc.pid)
            req = _pb.admin_pb2.WaitForResultRequest(
                execution_id=ex.execution_id, timeout_ms=30000)
            futures = [c._stub.WaitForResult.future(req, timeout=40)
                       for _ in range(WAITERS)]
            time.sleep(1.5)  # every call has reached the node
            during = threads_of(node.proc.pid)
            done = [f.result() for f in futures]
            print(f"\nnode threads: {before} before, {during} with "
                  f"{WAITERS} waits", flush=True)
            self.assertTrue(all(x.status == "completed"
                                for x in done))
            # The node runs ~65 threads (the HTTP server's handler pool
            # among them); a thread per waiting call would add ~WAITERS.
            self.assertLess(during, 300)

    def test_starts_hold_no_threads(self):
        with napper_node() as (node, c):
            c.start("napper", {})
            # Some of the node's threads start shortly after it is
            # ready: count once they are up.
            time.sleep(1.0)
            before = threads_of(node.proc.pid)
            peak = [before]
            stop = threading.Event()

            def sample():
                while not stop.is_set():
                    peak[0] = max(peak[0], threads_of(node.proc.pid))
                    time.sleep(0.01)

            sampler = threading.Thread(target=sample)
            sampler.start()
            futures = [c._stub.StartExecution.future(
                _pb.admin_pb2.StartExecutionRequest(
                    workflow="napper", execution_id=f"s-{i}",
                    started_by="test"), timeout=60)
                for i in range(STARTS)]
            started = [f.result() for f in futures]
            stop.set()
            sampler.join()
            print(f"\nnode threads: {before} before, at most "
                  f"{peak[0]} with {STARTS} concurrent starts",
                  flush=True)
            self.assertTrue(all(x.created for x in started))
            # A thread per call waiting for its commit added
            # hundreds (10,000 starts: 3,709 threads).
            self.assertLess(peak[0] - before, 50)

    def test_a_node_stops_promptly_under_pending_waits(self):
        with napper_node(WORKFLOW.replace("3s", "60s")) as (node, c):
            ex = c.start("napper", {})
            req = _pb.admin_pb2.WaitForResultRequest(
                execution_id=ex.execution_id, timeout_ms=50000)
            futures = [c._stub.WaitForResult.future(req, timeout=55)
                       for _ in range(100)]
            time.sleep(1.0)
            t0 = time.monotonic()
            node.proc.terminate()
            node.proc.wait(30)
            took = time.monotonic() - t0
            print(f"\nstopped in {took:.1f} s with 100 waits",
                  flush=True)
            # The gRPC server gives calls 2 s, then cancels them.
            self.assertLess(took, 10)
            self.assertEqual(node.proc.returncode, 0)
            for f in futures:
                self.assertIsNotNone(f.exception(timeout=10))


if __name__ == "__main__":
    unittest.main()
