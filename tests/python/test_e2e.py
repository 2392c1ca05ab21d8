"""End to end: the example workflow (sdk/python/examples/orders.py) on the
real node binary ($CEREBELUM_BIN), with a Python worker and client."""

import os
import sys
import threading
import time
import unittest
import uuid

import cerebelum
from cerebelum import Client, RegistrationError, Worker
from node_process import NodeProcess

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(
    cerebelum.__file__)), "..", "examples"))
import orders  # noqa: E402  (the examples under test)
import yaml_worker  # noqa: E402


class EndToEnd(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.node = NodeProcess(os.environ.get("CEREBELUM_BIN", ""))
        cls.worker = Worker(cls.node.address, ["orders"],
                            workflows=[orders.py_order], max_in_flight=4,
                            poll_wait=2, handle_signals=False)
        cls.worker_error = None

        def run():
            try:
                cls.worker.run()
            except Exception as e:  # shown by the assertion below
                cls.worker_error = e
        cls.thread = threading.Thread(target=run, daemon=True)
        cls.thread.start()
        cls.client = Client(cls.node.address, by="e2e")
        deadline = time.monotonic() + 20
        while "py_order" not in cls.worker.registered_workflows:
            if time.monotonic() > deadline or not cls.thread.is_alive():
                cls.tearDownClass()
                raise AssertionError("the worker did not register py_order: "
                                     f"{cls.worker_error}")
            time.sleep(0.05)

    @classmethod
    def tearDownClass(cls):
        cls.worker.stop()
        cls.thread.join(30)
        cls.client.close()
        cls.node.stop()

    def start(self, amount, items=None):
        oid = f"o-{uuid.uuid4().hex[:8]}"
        ex = self.client.start("py_order", {
            "order_id": oid, "amount": amount,
            "items": items or [{"sku": "book", "qty": 1}]})
        return oid, ex

    def test_the_example_workflow_runs_to_completion(self):
        self.assertIn("py_order", self.client.workflows())
        oid, ex = self.start(120)
        done = self.client.wait(ex.execution_id, timeout=60)
        self.assertEqual(done.status, "completed", done)
        self.assertEqual(done.result, {
            "order_id": oid,
            "shipment": {"shipment": f"ship-{oid}", "approved_by": "policy"}})

    def test_a_large_order_sleeps_waits_for_approval_and_completes(self):
        oid, ex = self.start(5000)
        deadline = time.monotonic() + 60
        info = self.client.describe(ex.execution_id)
        while info.status != "awaiting_approval":
            self.assertFalse(info.done, info)
            self.assertLess(time.monotonic(), deadline, info)
            time.sleep(0.1)
            info = self.client.describe(ex.execution_id)
        self.assertEqual(info.approval_data,
                         {"order_id": oid, "amount": 5000, "score": 0.9})
        self.client.approve(ex.execution_id, data={"note": "fine"})
        done = self.client.wait(ex.execution_id, timeout=60)
        self.assertEqual(done.status, "completed", done)
        self.assertEqual(done.result["shipment"]["approved_by"], "operator")

    def test_an_invalid_order_fails_without_retry(self):
        _, ex = self.start(0)
        done = self.client.wait(ex.execution_id, timeout=60)
        self.assertEqual(done.status, "failed", done)
        self.assertEqual(done.error["kind"], "invalid_order")
        self.assertFalse(done.error["retryable"])

    def test_a_yaml_workflow_served_by_python_steps(self):
        w = yaml_worker.make_worker(self.node.address, poll_wait=2,
                                    handle_signals=False)
        t = threading.Thread(target=w.run, daemon=True)
        t.start()
        try:
            deadline = time.monotonic() + 20
            while "py_greeting" not in w.registered_workflows:
                self.assertTrue(t.is_alive())
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.05)
            ex = self.client.start("py_greeting", {"name": "ada"})
            self.assertEqual(self.client.result(ex.execution_id, 60),
                             {"text": "HELLO, ADA!", "attempt": 1})
        finally:
            w.stop()
            t.join(30)

    def test_the_node_refuses_an_invalid_python_workflow(self):
        @cerebelum.step(queue="orders")
        def lonely(x):
            return x

        bad = cerebelum.workflow(
            lambda: lonely >> cerebelum.Raw({"name": "jump", "log": "'x'",
                                             "branch": [{"goto": "nowhere"}]}),
            name="py_bad")
        w = Worker(self.node.address, ["orders"], workflows=[bad],
                   handle_signals=False)
        with self.assertRaises(RegistrationError) as cm:
            w.run()
        self.assertIn("nowhere", str(cm.exception))


if __name__ == "__main__":
    unittest.main()
