"""Lost work is the engine's to retry: a Python worker killed with SIGKILL
in the middle of a task costs seconds (the node's task lease, 6 s by
default), not the 30 s of the old lease, and the step, which has no retry
policy, completes on another worker instead of failing its execution. Real
node binary ($CEREBELUM_BIN), real worker processes."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

from cerebelum import Client
from node_process import NodeProcess

HERE = os.path.dirname(os.path.abspath(__file__))

WORKFLOW = """\
name: lost_work
steps:
  - name: work
    task: lost.work
    queue: lost
  - name: after
    log: "done by ${steps.work.by}"
"""


class LostWork(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        wf = os.path.join(self.tmp.name, "workflows")
        os.mkdir(wf)
        with open(os.path.join(wf, "lost_work.yaml"), "w") as f:
            f.write(WORKFLOW)
        # LOST_WORK_NODE_ARGS: e.g. "--task-lease 30 --max-reoffers 0" plays
        # the node before lost work was re-offered (the test must fail).
        self.node = NodeProcess(
            os.environ.get("CEREBELUM_BIN", ""), wf,
            os.environ.get("LOST_WORK_NODE_ARGS", "").split())
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        self.node.stop()
        self.tmp.cleanup()

    def worker(self, mode, worker_id, marker=""):
        p = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "lost_worker_proc.py"),
             "--server", self.node.address, "--mode", mode,
             "--worker-id", worker_id, "--marker", marker],
            env=os.environ.copy())
        self.procs.append(p)
        return p

    def history(self, execution_id):
        url = (f"http://127.0.0.1:{self.node.http_port}/v1/executions/"
               f"{execution_id}/history")
        with urllib.request.urlopen(url, timeout=10) as r:
            return json.load(r)["events"]

    def test_a_killed_worker_costs_seconds_and_no_retry_budget(self):
        marker = os.path.join(self.tmp.name, "started")
        doomed = self.worker("hang", "doomed", marker)
        with Client(self.node.address, by="lost-work-test") as c:
            ex = c.start("lost_work", {})
            deadline = time.monotonic() + 30
            while not os.path.exists(marker):
                self.assertLess(time.monotonic(), deadline,
                                "the first worker never ran the step")
                self.assertIsNone(doomed.poll())
                time.sleep(0.05)
            # The second worker is up before the first dies, so the time
            # measured is the node's: noticing the loss and offering again.
            self.worker("quick", "rescuer")
            time.sleep(1.0)
            killed_at = time.monotonic()
            doomed.send_signal(signal.SIGKILL)
            doomed.wait()
            result = c.wait(ex.execution_id, 60)
            elapsed = time.monotonic() - killed_at
            self.assertEqual(result.status, "completed",
                             f"{result}\n{self.node.output()[-3000:]}")
            self.assertLess(elapsed, 12.0,
                            "the lost task should be offered again within "
                            "the 6 s task lease")
            print(f"\nSIGKILL of the worker to completion: {elapsed:.1f} s",
                  file=sys.stderr)
        events = self.history(ex.execution_id)
        failed = [e for e in events if e["type"] == "step_failed"]
        self.assertEqual(len(failed), 1, events)
        self.assertTrue(failed[0].get("lost"), failed[0])
        self.assertEqual(failed[0]["error"]["kind"], "lease_expired")
        diverged = [e for e in events if e["type"] == "diverge_taken"]
        self.assertEqual([d["action"] for d in diverged], ["reoffer"])
        done = [e for e in events if e["type"] == "step_completed"
                and e["step"] == "work"]
        self.assertEqual(len(done), 1)
        self.assertEqual(json.loads(json.dumps(done[0]["result"]))["by"],
                         "rescuer")


if __name__ == "__main__":
    unittest.main()
