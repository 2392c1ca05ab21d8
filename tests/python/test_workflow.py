"""Workflows defined in Python become the node's blueprint format."""

import datetime
import json
import tempfile
import unittest
from pathlib import Path

import cerebelum
from cerebelum import Raw, Retry, parallel, step, workflow
from cerebelum.steps import StepContext, to_ms


@step(queue="orders")
async def validate(order_id, amount, ctx):
    return {"ok": True}


@step(queue="orders")
def check_stock(order_id, validate):
    return {"in_stock": True}


@step(queue="risk", retry=Retry(max_attempts=5, initial_interval=0.5,
                                max_interval="10s"), timeout=30,
      heartbeat_timeout="10s")
def check_fraud(amount, ctx: StepContext):
    return {"score": 0.1}


@step("orders.ship", queue="orders", idempotency_key="ship-${input.order_id}")
async def ship(order_id, check_stock, check_fraud, note="none"):
    return "shipped"


class Blueprint(unittest.TestCase):
    def test_a_chain_with_a_parallel_group(self):
        @workflow(version="1")
        def order():
            return validate >> [check_stock, check_fraud] >> ship

        self.assertEqual(order.blueprint(), {
            "name": "order", "version": "1", "steps": [
                {"name": "validate", "task": "validate", "queue": "orders",
                 "input": {"order_id": "input.order_id",
                           "amount": "input.amount"}},
                {"name": "check_stock_and_check_fraud", "parallel": [
                    {"name": "check_stock", "task": "check_stock",
                     "queue": "orders",
                     "input": {"order_id": "input.order_id",
                               "validate": "steps.validate"}},
                    {"name": "check_fraud", "task": "check_fraud",
                     "queue": "risk", "input": {"amount": "input.amount"},
                     "retry": {"max_attempts": 5,
                               "initial_interval": "500ms",
                               "backoff_coefficient": 2,
                               "max_interval": "10s"},
                     "timeout": "30000ms", "heartbeat_timeout": "10s"}]},
                {"name": "ship", "task": "orders.ship", "queue": "orders",
                 "input": {"order_id": "input.order_id",
                           "check_stock": "steps.check_stock",
                           "check_fraud": "steps.check_fraud"},
                 "idempotency_key": "ship-${input.order_id}"}]})
        self.assertEqual(json.loads(order.to_json()), order.blueprint())
        self.assertEqual(order.source().format, "json")
        self.assertEqual([s.name for s in order.steps()],
                         ["validate", "check_stock", "check_fraud", "ship"])

    def test_a_step_result_is_only_wired_from_earlier_stages(self):
        @step(queue="q")
        def a(b):  # b runs later: read from the workflow input
            return 1

        @step(queue="q")
        def b(a):
            return 2

        wf = workflow(lambda: a >> b, name="order2")
        spec = wf.blueprint()["steps"]
        self.assertEqual(spec[0]["input"], {"b": "input.b"})
        self.assertEqual(spec[1]["input"], {"a": "steps.a"})

    def test_whole_input_explicit_input_and_no_input(self):
        @step(queue="q")
        def whole(input, ctx):
            return 1

        @step(queue="q")
        def rest(**fields):
            return 1

        @step(queue="q", input={"id": "input.order.id"})
        def explicit(id):
            return 1

        @step(queue="q")
        def nothing(ctx):
            return 1

        wf = workflow(lambda: whole >> rest >> explicit >> nothing,
                      name="w")
        steps = wf.blueprint()["steps"]
        self.assertEqual(steps[0]["input"], "input")
        self.assertEqual(steps[1]["input"], "input")
        self.assertEqual(steps[2]["input"], {"id": "input.order.id"})
        self.assertNotIn("input", steps[3])

    def test_class_form_named_groups_raw_steps_and_options(self):
        @workflow
        class OrderFlow:
            queue = "q2"
            version = 3
            output = {"shipment": "steps.ship"}
            max_iterations = 5
            input_schema = {"type": "object"}
            steps = (validate
                     >> parallel(check_stock, check_fraud, name="checks")
                     >> Raw({"name": "cool_down", "sleep": "2s"}) >> ship)

        doc = OrderFlow.blueprint()
        self.assertEqual(OrderFlow.name, "order_flow")
        self.assertEqual((doc["version"], doc["max_iterations"],
                          doc["output"], doc["input_schema"]),
                         ("3", 5, {"shipment": "steps.ship"},
                          {"type": "object"}))
        self.assertEqual([s["name"] for s in doc["steps"]],
                         ["validate", "checks", "cool_down", "ship"])
        self.assertEqual(doc["steps"][2], {"name": "cool_down",
                                           "sleep": "2s"})

    def test_list_on_the_left_and_chains_of_chains(self):
        first = [check_stock, check_fraud] >> ship
        wf = workflow(lambda: validate >> first, name="w")
        self.assertEqual([s["name"] for s in wf.blueprint()["steps"]],
                         ["validate", "check_stock_and_check_fraud", "ship"])

    def test_the_same_step_twice_needs_a_new_name(self):
        wf = workflow(lambda: validate >> validate, name="twice")
        with self.assertRaisesRegex(ValueError, "'validate' is used twice"):
            wf.blueprint()
        wf = workflow(lambda: validate >> validate.using(name="again"),
                      name="twice")
        self.assertEqual(wf.blueprint()["steps"][1]["task"], "validate")

    def test_a_step_without_queue_is_an_error(self):
        @step
        def loose():
            return 1

        with self.assertRaisesRegex(ValueError, "step 'loose' has no queue"):
            workflow(lambda: loose, name="w").blueprint()
        self.assertEqual(
            workflow(lambda: loose, name="w", queue="d").blueprint()[
                "steps"][0]["queue"], "d")

    def test_bad_chains_and_names_are_refused(self):
        with self.assertRaisesRegex(TypeError, "cannot chain 42"):
            validate >> 42
        with self.assertRaisesRegex(TypeError, "groups cannot nest"):
            validate >> [check_stock, [check_fraud]]
        with self.assertRaisesRegex(ValueError, "invalid step name"):
            step(name="bad-name")(lambda: 1)
        with self.assertRaisesRegex(TypeError, "unknown option"):
            step(retries=3)(lambda: 1)
        with self.assertRaisesRegex(ValueError, "returned no steps"):
            workflow(lambda: None, name="w").blueprint()


class Sources(unittest.TestCase):
    def test_yaml_and_json_files_and_text(self):
        with tempfile.TemporaryDirectory() as d:
            y = Path(d, "pay.yaml")
            y.write_text("name: pay\n")
            j = Path(d, "pay.json")
            j.write_text('{"name": "pay"}')
            self.assertEqual(cerebelum.workflows.to_source(str(y)),
                             cerebelum.Source("pay.yaml", "yaml",
                                              "name: pay\n"))
            self.assertEqual(cerebelum.workflows.to_source(j).format, "json")
            with self.assertRaisesRegex(FileNotFoundError, "not found"):
                cerebelum.workflows.to_source(Path(d, "nope.yaml"))
            with self.assertRaisesRegex(ValueError, "expected .yaml"):
                cerebelum.workflows.to_source("name: inline")
        self.assertEqual(cerebelum.yaml_text("name: x").format, "yaml")


class Durations(unittest.TestCase):
    def test_durations(self):
        self.assertEqual(to_ms(1.5), 1500)
        self.assertEqual(to_ms("1h30m"), 5_400_000)
        self.assertEqual(to_ms("250ms"), 250)
        self.assertEqual(to_ms("42"), 42)
        self.assertEqual(to_ms(datetime.timedelta(minutes=2)), 120_000)
        for bad in ("5 parsecs", "", "-1s", True, None):
            with self.assertRaises(ValueError):
                to_ms(bad)


class Context(unittest.TestCase):
    def test_sleep_outside_a_resume_needs_a_positive_duration(self):
        ctx = StepContext(is_async=False)
        with self.assertRaisesRegex(ValueError, "must be > 0"):
            ctx.sleep(0)

    def test_heartbeat_details_must_be_json(self):
        ctx = StepContext()
        with self.assertRaises(TypeError):
            ctx.heartbeat({"x": object()})
        ctx.heartbeat({"p": 1})
        self.assertEqual(ctx.details, {"p": 1})

    def test_a_step_stays_callable_as_the_function(self):
        self.assertEqual(check_stock("o", {}), {"in_stock": True})


if __name__ == "__main__":
    unittest.main()
