"""The client against an in-process fake AdminService."""

import json
import time
import unittest

import grpc

from cerebelum import (Client, DeadlineExceeded, ExecutionFailed,
                       FailedPrecondition, NotFound, Overloaded, Unavailable,
                       workflow)
from cerebelum_pb import admin_pb2, events_pb2
from fake_node import FakeNode, free_port


class ClientCase(unittest.TestCase):
    def setUp(self):
        self.node = FakeNode().start()
        self.admin = self.node.admin
        self.client = Client(self.node.address, by="alice")

    def tearDown(self):
        self.client.close()
        self.node.stop()

    def test_start_sends_workflow_input_id_and_who(self):
        ex = self.client.start("order", {"order_id": "o-1"},
                               execution_id="ex-1")
        req = self.admin.calls[-1].request
        self.assertEqual((req.workflow, json.loads(req.input_json),
                          req.execution_id, req.started_by),
                         ("order", {"order_id": "o-1"}, "ex-1", "alice"))
        self.assertEqual((ex.execution_id, ex.status, ex.input, ex.created),
                         ("ex-1", "running", {"order_id": "o-1"}, True))
        again = self.client.start("order", {"order_id": "o-1"},
                                  execution_id="ex-1")
        self.assertFalse(again.created)

    def test_start_takes_a_workflow_object_and_defaults_input(self):
        wf = workflow(lambda: None, name="flow")
        self.client.start(wf)
        req = self.admin.calls[-1].request
        self.assertEqual((req.workflow, req.input_json, req.execution_id),
                         ("flow", "{}", ""))

    def test_wait_returns_the_terminal_execution(self):
        self.admin.executions["ex-2"] = admin_pb2.ExecutionInfo(
            execution_id="ex-2", workflow="order", status="completed",
            result_json='{"shipment": "s-1"}')
        ex = self.client.wait("ex-2", timeout=5)
        self.assertTrue(ex.done)
        self.assertEqual(ex.result, {"shipment": "s-1"})
        self.assertEqual(self.client.result("ex-2"), {"shipment": "s-1"})

    def test_wait_times_out_with_deadline_exceeded(self):
        self.client.start("order", execution_id="ex-3")
        start = time.monotonic()
        with self.assertRaises(DeadlineExceeded):
            self.client.wait("ex-3", timeout=0.5)
        self.assertLess(time.monotonic() - start, 3)
        waits = [c.request for c in self.admin.calls
                 if c.method == "WaitForResult"]
        self.assertTrue(waits)
        self.assertLessEqual(waits[0].timeout_ms, 500)

    def test_result_of_a_failed_execution_raises(self):
        info = admin_pb2.ExecutionInfo(execution_id="ex-4", status="failed",
                                       workflow="order")
        info.error.CopyFrom(events_pb2.ErrorInfo(kind="card_declined",
                                                 message="no funds"))
        self.admin.executions["ex-4"] = info
        with self.assertRaises(ExecutionFailed) as cm:
            self.client.result("ex-4")
        self.assertIn("card_declined: no funds", str(cm.exception))
        self.assertEqual(cm.exception.execution.error["kind"],
                         "card_declined")

    def test_errors_are_mapped_to_exceptions(self):
        with self.assertRaisesRegex(NotFound, "unknown execution 'nope'"):
            self.client.describe("nope")
        self.client.start("order", execution_id="ex-5")
        with self.assertRaisesRegex(FailedPrecondition, "not awaiting"):
            self.client.approve("ex-5", data={"ok": 1})
        dead = Client(f"127.0.0.1:{free_port()}", timeout=1)
        with self.assertRaises(Unavailable):
            dead.describe("x")
        dead.close()

    def test_a_start_refused_as_over_capacity_is_tried_again(self):
        self.admin.fail_next("StartExecution",
                             grpc.StatusCode.RESOURCE_EXHAUSTED,
                             "the node is over capacity", times=2)
        began = time.monotonic()
        ex = self.client.start("order", execution_id="ex-busy")
        self.assertEqual(ex.execution_id, "ex-busy")
        self.assertEqual(len(self.admin.calls), 3)
        self.assertGreaterEqual(time.monotonic() - began, 1.9)
        # Past the client's timeout it gives up with Overloaded.
        short = Client(self.node.address, timeout=1.5)
        self.admin.fail_next("StartExecution",
                             grpc.StatusCode.RESOURCE_EXHAUSTED,
                             "the node is over capacity", times=5)
        with self.assertRaisesRegex(Overloaded, "over capacity"):
            short.start("order", execution_id="ex-busy-2")
        short.close()

    def test_approve_reject_cancel_send_who_and_data(self):
        self.admin.executions["ex-6"] = admin_pb2.ExecutionInfo(
            execution_id="ex-6", status="awaiting_approval")
        self.client.approve("ex-6", data={"limit": 10})
        self.client.reject("ex-6", reason="too big")
        ex = self.client.cancel("ex-6", reason="stop")
        reqs = {c.method: c.request for c in self.admin.calls}
        self.assertEqual((reqs["Approve"].by,
                          json.loads(reqs["Approve"].data_json)),
                         ("alice", {"limit": 10}))
        self.assertEqual((reqs["Reject"].by, reqs["Reject"].reason),
                         ("alice", "too big"))
        self.assertEqual(reqs["Cancel"].reason, "stop")
        self.assertEqual(ex.status, "cancelled")

    def test_list_follows_pages(self):
        for i in range(5):
            self.client.start("order", execution_id=f"ex-{i}")
        got = self.client.list(page_size=2)
        self.assertEqual([e.execution_id for e in got],
                         [f"ex-{i}" for i in range(5)])


if __name__ == "__main__":
    unittest.main()
