"""The SDK against the real node binary ($CEREBELUM_BIN) without workers:
the node's own loader accepts the blueprints Python workflows produce, and
the client speaks the real AdminService."""

import json
import os
import sys
import tempfile
import unittest

import cerebelum
from cerebelum import (Client, ExecutionFailed, FailedPrecondition, NotFound,
                       Raw, Retry, parallel, step, workflow)
from node_process import NodeProcess

examples = os.path.join(os.path.dirname(os.path.abspath(cerebelum.__file__)),
                        "..")
sys.path.insert(0, os.path.join(examples, "examples"))
sys.path.insert(0, os.path.join(examples, "bench"))
import bench_workers  # noqa: E402
import orders  # noqa: E402


@step(queue="misc", retry=Retry(max_attempts=4, initial_interval=0.25,
                                backoff_coefficient=3, max_interval="2s",
                                jitter=True),
      timeout="30s", heartbeat_timeout=5,
      diverge=[{"kind": "soft", "action": "continue"}])
def first(input, ctx):
    return 1


@step(queue="misc")
def left(first):
    return 1


@step(queue="misc")
def right(first, **extra):
    return 1


@workflow
class Everything:
    name = "py_everything"
    version = 7
    max_iterations = 3
    input_schema = {"type": "object", "required": ["x"]}
    steps = (first >> parallel(left, right, name="both")
             >> Raw({"name": "nap", "sleep": "10ms"})
             >> Raw({"name": "note", "log": "done ${input.x}"}))


def write(directory, wf):
    with open(os.path.join(directory, wf.name + ".json"), "w") as f:
        f.write(wf.to_json())


class NodeLoader(unittest.TestCase):
    def test_the_node_loads_python_blueprints(self):
        with tempfile.TemporaryDirectory() as d:
            for wf in (orders.py_order, bench_workers.bench3, Everything):
                write(d, wf)
            node = NodeProcess(os.environ.get("CEREBELUM_BIN", ""), d)
            try:
                with Client(node.address) as c:
                    self.assertEqual(
                        sorted(n for n in c.workflows()
                               if n.startswith("py_")),
                        ["py_bench3", "py_everything", "py_order"])
            finally:
                node.stop()

    def test_the_node_refuses_an_invalid_blueprint_naming_it(self):
        bad = workflow(lambda: first >> Raw({"name": "jump", "log": "'x'",
                                             "branch": [{"goto": "nowhere"}]}),
                       name="py_bad")
        with tempfile.TemporaryDirectory() as d:
            write(d, bad)
            with self.assertRaises(RuntimeError) as cm:
                NodeProcess(os.environ.get("CEREBELUM_BIN", ""), d).stop()
        self.assertIn("nowhere", str(cm.exception))


class RealAdminService(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.TemporaryDirectory()
        write(cls.dir.name, orders.py_order)
        cls.node = NodeProcess(os.environ.get("CEREBELUM_BIN", ""),
                               cls.dir.name)
        cls.client = Client(cls.node.address, by="py-test")

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        cls.node.stop()
        cls.dir.cleanup()

    def test_start_describe_cancel_wait(self):
        order = {"order_id": "o-1", "amount": 5, "items": [{"sku": "a"}]}
        ex = self.client.start(orders.py_order, order, execution_id="c-1")
        self.assertTrue(ex.created)
        self.assertEqual((ex.execution_id, ex.workflow, ex.input),
                         ("c-1", "py_order", order))
        again = self.client.start("py_order", order, execution_id="c-1")
        self.assertFalse(again.created)
        info = self.client.describe("c-1")
        self.assertFalse(info.done)  # no worker serves its tasks
        self.assertIn("c-1", [e.execution_id for e in
                              self.client.list(workflow="py_order")])
        with self.assertRaises(FailedPrecondition):
            self.client.approve("c-1")
        self.client.cancel("c-1", reason="test")
        done = self.client.wait("c-1", timeout=30)
        self.assertEqual(done.status, "cancelled")
        with self.assertRaises(ExecutionFailed):
            self.client.result("c-1", timeout=5)

    def test_unknown_ids_and_workflows_are_not_found(self):
        with self.assertRaisesRegex(NotFound, "nope"):
            self.client.describe("nope")
        with self.assertRaises(NotFound):
            self.client.start("py_missing", {})

    def test_bad_input_is_refused_by_the_schema_or_json(self):
        with self.assertRaises(cerebelum.CerebelumError):
            self.client.start("py_order", json.loads('"not an object"'))


if __name__ == "__main__":
    unittest.main()
