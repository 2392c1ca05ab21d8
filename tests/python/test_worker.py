"""The worker against an in-process fake node: the exact requests it sends."""

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import unittest

import grpc

import cerebelum
from cerebelum import NonRetryableError, StepError, Worker, step
from fake_node import FakeNode

logging.basicConfig(level=os.environ.get("CEREBELUM_TEST_LOG", "WARNING"))


class WorkerCase(unittest.TestCase):
    def setUp(self):
        self.node = FakeNode().start()
        self.fake = self.node.worker
        self.workers = []

    def tearDown(self):
        for w, t in self.workers:
            w.stop(force=True)
            t.join(10)
        self.node.stop()

    def start_worker(self, steps, **kw):
        kw.setdefault("poll_wait", 0.5)
        kw.setdefault("handle_signals", False)
        kw.setdefault("reconnect_backoff", (0.05, 0.2))
        w = Worker(self.node.address, kw.pop("queues", ["q"]), steps=steps,
                   **kw)
        t = threading.Thread(target=w.run, daemon=True)
        t.start()
        self.workers.append((w, t))
        return w, t

    def result(self, token, timeout=10.0):
        req = self.fake.outcome(token, timeout)
        self.assertEqual(req.WhichOneof("outcome"), "result_json",
                         f"expected a result, got {req}")
        return json.loads(req.result_json)

    def error(self, token, timeout=10.0):
        req = self.fake.outcome(token, timeout)
        self.assertEqual(req.WhichOneof("outcome"), "error",
                         f"expected an error, got {req}")
        return req.error


class DependencyInjection(WorkerCase):
    def test_parameters_get_input_fields_ctx_input_and_defaults(self):
        @step
        async def greet(order_id, ctx, input, amount=7, **rest):
            return {"order_id": order_id, "amount": amount, "rest": rest,
                    "input": input, "execution": ctx.execution_id,
                    "attempt": ctx.attempt, "step": ctx.step,
                    "key": ctx.idempotency_key}

        self.start_worker([greet])
        t = self.fake.add_task(task_type="greet", execution_id="ex-9",
                               attempt=3, idempotency_key="k-1",
                               input_json={"order_id": "o-1", "extra": 1})
        self.assertEqual(self.result(t.attempt_token), {
            "order_id": "o-1", "amount": 7, "rest": {"extra": 1},
            "input": {"order_id": "o-1", "extra": 1}, "execution": "ex-9",
            "attempt": 3, "step": "greet", "key": "k-1"})

    def test_a_plain_function_runs_and_previous_results_arrive_by_name(self):
        @step
        def ship(order_id, validate):
            return f"{order_id}:{validate['ok']}:{threading.current_thread().name}"

        self.start_worker([ship])
        t = self.fake.add_task(task_type="ship", input_json={
            "order_id": "o-2", "validate": {"ok": True}})
        self.assertEqual(self.result(t.attempt_token),
                         "o-2:True:cerebelum-step-ship")

    def test_a_missing_parameter_fails_without_retry_naming_it(self):
        @step
        def charge(amount, card):
            return 1

        self.start_worker([charge])
        t = self.fake.add_task(task_type="charge", input_json={"amount": 1})
        err = self.error(t.attempt_token)
        self.assertEqual(err.kind, "input_mismatch")
        self.assertFalse(err.retryable)
        self.assertIn("card", err.message)
        self.assertIn("amount", err.message)


class Heartbeats(WorkerCase):
    def assert_regular(self, token, task_added_at, hb_timeout, until):
        # Sent every third of the timeout: about 6 over the step's 2 s.
        beats = [c.at for c in self.fake.of("Heartbeat", token)]
        self.assertGreaterEqual(len(beats), 5, beats)
        marks = [task_added_at] + beats + [until]
        gaps = [b - a for a, b in zip(marks, marks[1:])]
        self.assertLess(max(gaps), hb_timeout,
                        f"heartbeat gaps {gaps} exceed {hb_timeout}")

    def test_a_cpu_bound_plain_step_keeps_heartbeating(self):
        @step
        def crunch():
            end = time.monotonic() + 2.0
            n = 0
            while time.monotonic() < end:
                n += 1
            return n > 0

        self.start_worker([crunch])
        t = self.fake.add_task(task_type="crunch", heartbeat_timeout_ms=600)
        added = time.monotonic()
        self.assertTrue(self.result(t.attempt_token))
        done = self.fake.wait_for("CompleteTask")[0].at
        self.assert_regular(t.attempt_token, added, 0.6, done)

    def test_an_async_step_blocking_the_event_loop_keeps_heartbeating(self):
        @step
        async def blocker():
            time.sleep(2.0)  # blocks the worker's event loop on purpose
            return "done"

        self.start_worker([blocker])
        t = self.fake.add_task(task_type="blocker",
                               heartbeat_timeout_ms=600)
        added = time.monotonic()
        self.assertEqual(self.result(t.attempt_token), "done")
        done = self.fake.wait_for("CompleteTask")[0].at
        self.assert_regular(t.attempt_token, added, 0.6, done)

    def test_without_heartbeat_timeout_the_lease_sets_the_period(self):
        self.fake.lease_timeout_ms = 900

        @step
        async def slow():
            await asyncio.sleep(2.0)
            return 1

        self.start_worker([slow])
        t = self.fake.add_task(task_type="slow")
        added = time.monotonic()
        self.result(t.attempt_token)
        done = self.fake.wait_for("CompleteTask")[0].at
        self.assert_regular(t.attempt_token, added, 0.9, done)

    def test_progress_details_are_sent_once_each(self):
        @step
        def progress(ctx):
            ctx.heartbeat({"done": 1})
            time.sleep(0.5)
            ctx.heartbeat({"done": 2})
            time.sleep(0.5)
            return "ok"

        self.start_worker([progress])
        t = self.fake.add_task(task_type="progress",
                               heartbeat_timeout_ms=300)
        self.result(t.attempt_token)
        details = [c.request.details_json
                   for c in self.fake.of("Heartbeat", t.attempt_token)]
        sent = [json.loads(d) for d in details if d]
        self.assertEqual(sent, [{"done": 1}, {"done": 2}], details)
        self.assertGreater(len(details), len(sent))  # plain beats between
        for c in self.fake.of("Heartbeat", t.attempt_token):
            self.assertTrue(c.request.worker_id)


class Suspension(WorkerCase):
    def test_waits_suspend_with_keys_by_call_order_and_resume(self):
        runs = []

        @step
        async def review(order_id, ctx):
            runs.append(ctx.attempt)
            await ctx.sleep(2)
            data = await ctx.wait_for_approval(data={"order": order_id},
                                               timeout="1h")
            await ctx.sleep(0.25)
            return {"approved_with": data}

        self.start_worker([review])
        inp = {"order_id": "o-7"}
        t1 = self.fake.add_task(task_type="review", task_id="r1",
                                input_json=inp)
        s = self.fake.outcome(t1.attempt_token).suspend
        self.assertEqual((s.wait_key, s.sleep_ms, s.approval),
                         ("sleep#1", 2000, False))
        t2 = self.fake.add_task(task_type="review", task_id="r2", attempt=2,
                                input_json=inp,
                                resume_json={"sleep#1": True})
        s = self.fake.outcome(t2.attempt_token).suspend
        self.assertEqual(s.wait_key, "approval#2")
        self.assertTrue(s.approval)
        self.assertEqual(json.loads(s.approval_data_json), {"order": "o-7"})
        self.assertEqual(s.approval_timeout_ms, 3_600_000)
        self.assertEqual(s.sleep_ms, 0)
        t3 = self.fake.add_task(task_type="review", task_id="r3", attempt=3,
                                input_json=inp, resume_json={
                                    "sleep#1": True, "approval#2": {"ok": 1}})
        s = self.fake.outcome(t3.attempt_token).suspend
        self.assertEqual((s.wait_key, s.sleep_ms), ("sleep#3", 250))
        t4 = self.fake.add_task(task_type="review", task_id="r4", attempt=4,
                                input_json=inp, resume_json={
                                    "sleep#1": True, "approval#2": {"ok": 1},
                                    "sleep#3": True})
        self.assertEqual(self.result(t4.attempt_token),
                         {"approved_with": {"ok": 1}})
        self.assertEqual(runs, [1, 2, 3, 4])  # re-runs from the start

    def test_a_plain_step_calls_waits_without_await(self):
        @step
        def gate(ctx):
            data = ctx.wait_for_approval()
            return {"got": data}

        self.start_worker([gate])
        t1 = self.fake.add_task(task_type="gate", task_id="g1")
        s = self.fake.outcome(t1.attempt_token).suspend
        self.assertEqual((s.wait_key, s.approval, s.approval_data_json,
                          s.approval_timeout_ms), ("approval#1", True, "", 0))
        t2 = self.fake.add_task(task_type="gate", task_id="g2",
                                resume_json={"approval#1": "yes"})
        self.assertEqual(self.result(t2.attempt_token), {"got": "yes"})

    def test_a_suspension_is_not_swallowed_by_except_exception(self):
        @step
        async def careless(ctx):
            try:
                await ctx.sleep(1)
            except Exception:
                return "swallowed"
            return "resumed"

        self.start_worker([careless])
        t = self.fake.add_task(task_type="careless")
        self.assertEqual(self.fake.outcome(t.attempt_token).suspend.wait_key,
                         "sleep#1")


class Errors(WorkerCase):
    def test_error_kinds_and_retryable_flags(self):
        class Declined(Exception):
            retryable = False

        @step
        def boom(what):
            if what == "value":
                raise ValueError("bad value")
            if what == "nonretry":
                raise NonRetryableError("no such order", kind="invalid_order")
            if what == "steperror":
                raise StepError("upstream 503", kind="http_503",
                                details={"status": 503})
            if what == "declined":
                raise Declined("card declined")
            if what == "notjson":
                return {"x": object()}
            return "ok"

        self.start_worker([boom])
        cases = {}
        for what in ("value", "nonretry", "steperror", "declined",
                     "notjson"):
            cases[what] = self.fake.add_task(
                task_type="boom", task_id=what, input_json={"what": what})
        e = self.error(cases["value"].attempt_token)
        self.assertEqual((e.kind, e.message, e.retryable),
                         ("ValueError", "bad value", True))
        self.assertIn("raise ValueError", json.loads(e.details_json)[
            "traceback"])
        e = self.error(cases["nonretry"].attempt_token)
        self.assertEqual((e.kind, e.message, e.retryable),
                         ("invalid_order", "no such order", False))
        e = self.error(cases["steperror"].attempt_token)
        self.assertEqual((e.kind, e.retryable, json.loads(e.details_json)),
                         ("http_503", True, {"status": 503}))
        e = self.error(cases["declined"].attempt_token)
        self.assertEqual((e.kind, e.retryable), ("Declined", False))
        e = self.error(cases["notjson"].attempt_token)
        self.assertEqual((e.kind, e.retryable), ("result_not_json", False))

    def test_an_unknown_task_type_fails_without_retry(self):
        @step
        def known():
            return 1

        self.start_worker([known])
        t = self.fake.add_task(task_type="mystery")
        e = self.error(t.attempt_token)
        self.assertEqual((e.kind, e.retryable), ("unknown_task_type", False))
        self.assertIn("mystery", e.message)

    def test_a_refused_result_is_reported_as_a_failure(self):
        @step
        def big():
            return "x" * 100

        self.fake.fail_next("CompleteTask", grpc.StatusCode.INVALID_ARGUMENT,
                            "result of 100 bytes exceeds the limit")
        self.start_worker([big])
        t = self.fake.add_task(task_type="big")
        calls = self.fake.wait_for("CompleteTask", 2, t.attempt_token)
        self.assertEqual(calls[0].request.WhichOneof("outcome"),
                         "result_json")
        e = calls[1].request.error
        self.assertEqual((e.kind, e.retryable), ("invalid_result", False))
        self.assertIn("exceeds the limit", e.message)


class Cancellation(WorkerCase):
    def test_cancel_requested_cancels_an_async_step(self):
        @step
        async def long_wait():
            await asyncio.sleep(30)
            return "late"

        self.start_worker([long_wait])
        self.fake.cancel_tokens.add("c1/a1")
        t = self.fake.add_task(task_type="long_wait", task_id="c1",
                               heartbeat_timeout_ms=300)
        start = time.monotonic()
        e = self.error(t.attempt_token)
        self.assertEqual((e.kind, e.retryable), ("cancelled", False))
        self.assertLess(time.monotonic() - start, 3)

    def test_a_plain_step_sees_ctx_cancelled(self):
        @step
        def polite(ctx):
            end = time.monotonic() + 30
            while time.monotonic() < end:
                ctx.check_cancelled()
                time.sleep(0.01)
            return "late"

        self.start_worker([polite])
        self.fake.cancel_tokens.add("c2/a1")
        t = self.fake.add_task(task_type="polite", task_id="c2",
                               heartbeat_timeout_ms=300)
        self.assertEqual(self.error(t.attempt_token).kind, "cancelled")

    def test_a_lost_lease_stops_the_step_and_reports_nothing(self):
        stopped = threading.Event()

        @step
        async def leased():
            try:
                await asyncio.sleep(30)
            finally:
                stopped.set()

        self.start_worker([leased])
        self.fake.stale_tokens.add("l1/a1")
        t = self.fake.add_task(task_type="leased", task_id="l1",
                               heartbeat_timeout_ms=300)
        self.assertTrue(stopped.wait(5))
        time.sleep(0.3)
        self.assertEqual(self.fake.of("CompleteTask", t.attempt_token), [])


class Concurrency(WorkerCase):
    def test_at_most_max_in_flight_steps_run_at_once(self):
        running = {"now": 0, "max": 0}
        lock = threading.Lock()

        @step
        async def work(n):
            with lock:
                running["now"] += 1
                running["max"] = max(running["max"], running["now"])
            await asyncio.sleep(0.3)
            with lock:
                running["now"] -= 1
            return n

        tasks = [self.fake.add_task(task_type="work", task_id=f"w{i}",
                                    input_json={"n": i}) for i in range(5)]
        w, _ = self.start_worker([work], max_in_flight=2)
        for i, t in enumerate(tasks):
            self.assertEqual(self.result(t.attempt_token), i)
        self.assertEqual(running["max"], 2)
        reg = self.fake.wait_for("Register")[0].request
        self.assertEqual(reg.max_in_flight, 2)


class Connection(WorkerCase):
    def test_the_worker_waits_for_a_node_that_is_not_up_yet(self):
        port = self.node.port
        self.node.stop()

        @step
        def hello():
            return "hi"

        late = FakeNode(port)
        w = Worker(late.address, ["q"], steps=[hello], poll_wait=0.5,
                   handle_signals=False, reconnect_backoff=(0.05, 0.2))
        th = threading.Thread(target=w.run, daemon=True)
        th.start()
        self.workers.append((w, th))
        time.sleep(0.8)
        self.node = late.start()
        self.fake = late.worker
        t = self.fake.add_task(task_type="hello")
        self.assertEqual(self.result(t.attempt_token), "hi")

    def test_unavailable_and_unknown_worker_make_it_register_again(self):
        @step
        def hello():
            return "hi"

        self.fake.fail_next("PollTask", grpc.StatusCode.UNAVAILABLE,
                            "store down", times=2)
        self.start_worker([hello])
        self.fake.wait_for("Register", 2)
        self.fake.fail_next("PollTask", grpc.StatusCode.NOT_FOUND,
                            "unknown worker")
        self.fake.wait_for("Register", 3)
        t = self.fake.add_task(task_type="hello")
        self.assertEqual(self.result(t.attempt_token), "hi")
        ids = {c.request.worker_id for c in self.fake.of("Register")}
        self.assertEqual(len(ids), 1)  # the same worker id every time

    def test_a_result_is_retried_until_the_node_takes_it(self):
        @step
        def hello():
            return "hi"

        self.fake.fail_next("CompleteTask", grpc.StatusCode.UNAVAILABLE,
                            "down", times=3)
        self.start_worker([hello])
        t = self.fake.add_task(task_type="hello")
        calls = self.fake.wait_for("CompleteTask", 4, t.attempt_token)
        self.assertEqual({c.request.result_json for c in calls}, {'"hi"'})

    def test_a_refused_registration_raises_with_the_nodes_message(self):
        @step
        def hello():
            return "hi"

        self.fake.fail_next("Register", grpc.StatusCode.INVALID_ARGUMENT,
                            "orders.json:3:5: step 'x': unknown key 'tsk'")
        w = Worker(self.node.address, ["q"], steps=[hello],
                   handle_signals=False)
        with self.assertRaises(cerebelum.RegistrationError) as cm:
            w.run()
        self.assertIn("unknown key 'tsk'", str(cm.exception))
        self.assertEqual(self.fake.of("Unregister"), [])


    def test_a_node_without_worker_service_is_named_not_retried(self):
        @step
        def hello():
            return "hi"

        admin_only = FakeNode(with_workers=False).start()
        try:
            w = Worker(admin_only.address, ["q"], steps=[hello],
                       handle_signals=False)
            with self.assertRaisesRegex(cerebelum.RegistrationError,
                                        "does not serve the WorkerService"):
                w.run()
        finally:
            admin_only.stop()


class Stopping(WorkerCase):
    def test_stop_lets_a_running_step_finish_then_unregisters(self):
        started = threading.Event()

        @step
        def slow():
            started.set()
            time.sleep(0.5)
            return "finished"

        w, th = self.start_worker([slow])
        t = self.fake.add_task(task_type="slow")
        self.assertTrue(started.wait(5))
        w.stop()
        th.join(10)
        self.assertFalse(th.is_alive())
        done = self.fake.wait_for("CompleteTask", token=t.attempt_token)[0]
        unreg = self.fake.wait_for("Unregister")[0]
        self.assertEqual(done.request.result_json, '"finished"')
        self.assertLess(done.at, unreg.at)
        self.assertEqual(unreg.request.worker_id, w.worker_id)

    def test_steps_still_running_after_the_grace_are_handed_back(self):
        started = threading.Event()

        @step
        async def endless():
            started.set()
            await asyncio.sleep(60)

        w, th = self.start_worker([endless], shutdown_grace=0.3)
        t = self.fake.add_task(task_type="endless")
        self.assertTrue(started.wait(5))
        start = time.monotonic()
        w.stop()
        th.join(10)
        self.assertLess(time.monotonic() - start, 3)
        self.fake.wait_for("Unregister")
        self.assertEqual(self.fake.of("CompleteTask", t.attempt_token), [])

    def test_sigterm_stops_a_worker_process_gracefully(self):
        here = os.path.dirname(os.path.abspath(__file__))
        script = textwrap.dedent(f"""
            import logging, sys, time
            logging.basicConfig(level=logging.INFO)
            from cerebelum import Worker, step
            @step
            def slow():
                print("step started", flush=True)
                time.sleep(0.5)
                return "done"
            Worker({self.node.address!r}, ["q"], steps=[slow],
                   poll_wait=0.5).run()
            print("exited cleanly", flush=True)
        """)
        proc = subprocess.Popen([sys.executable, "-c", script],
                                stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True,
                                env=dict(os.environ), cwd=here)
        # The signal goes once the step runs: sent while the task is still
        # on its way to the worker, it would cancel that poll and leave the
        # task to its lease (the node offers it again), which is another case.
        lines, started = [], threading.Event()

        def read():
            for line in proc.stdout:
                lines.append(line)
                if "step started" in line:
                    started.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            self.fake.wait_for("Register")
            t = self.fake.add_task(task_type="slow")
            self.assertTrue(started.wait(10), "".join(lines))
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=15)
            reader.join(5)
        finally:
            if proc.poll() is None:
                proc.kill()
        out = "".join(lines)
        self.assertEqual(proc.returncode, 0, out)
        self.assertIn("exited cleanly", out)
        self.assertIn("SIGTERM", out)
        self.assertEqual(self.result(t.attempt_token, 1), "done")
        self.fake.wait_for("Unregister", timeout=1)


class Registration(WorkerCase):
    def test_register_carries_queues_limits_and_workflow_blueprints(self):
        @step(queue="orders")
        def validate(order_id):
            return True

        @step(queue="orders")
        def ship(order_id, validate):
            return "shipped"

        @cerebelum.workflow(version="2")
        def order():
            return validate >> ship

        src = cerebelum.yaml_text("name: other\nsteps: []\n", "other.yaml")
        w, _ = self.start_worker([], queues=["orders", "extra"],
                                 workflows=[order, src], max_in_flight=3,
                                 worker_id="w-fixed")
        req = self.fake.wait_for("Register")[0].request
        self.assertEqual(req.worker_id, "w-fixed")
        self.assertEqual(list(req.queues), ["orders", "extra"])
        self.assertEqual(req.max_in_flight, 3)
        self.assertEqual([(s.name, s.format) for s in req.workflows],
                         [("order.json", "json"), ("other.yaml", "yaml")])
        self.assertEqual(json.loads(req.workflows[0].text),
                         order.blueprint())
        self.assertEqual(req.workflows[1].text, "name: other\nsteps: []\n")
        poll = self.fake.wait_for("PollTask")[0].request
        self.assertEqual((poll.worker_id, list(poll.queues), poll.wait_ms),
                         ("w-fixed", ["orders", "extra"], 500))
        for _ in range(50):
            if w.registered_workflows:
                break
            time.sleep(0.02)
        self.assertEqual(w.registered_workflows, ["order", "other"])


if __name__ == "__main__":
    unittest.main()
