"""The five-minute example: an order workflow defined in Python.

    validate >> [check_stock, check_fraud] >> review >> ship

Large orders (amount > 1000) cool down for a durable second and then wait
for an operator's approval inside the `review` step.

Run a worker for it (the node must be running, see ../README.md):

    /usr/bin/python3 examples/orders.py --server 127.0.0.1:9740
"""

import argparse
import asyncio
import logging
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                ".."))

from cerebelum import NonRetryableError, Retry, Worker, step, workflow  # noqa: E402

log = logging.getLogger("orders")


@step(retry=Retry(max_attempts=3, initial_interval="200ms"))
async def validate(order_id, amount, items):
    if amount <= 0 or not items:
        raise NonRetryableError(f"order {order_id} has no amount or items",
                                kind="invalid_order")
    return {"order_id": order_id, "lines": len(items)}


@step(heartbeat_timeout="5s")
def check_stock(items, ctx):
    # A plain (blocking) function: it runs on a thread of its own, while
    # the worker keeps heartbeating for it.
    for n, item in enumerate(items, 1):
        ctx.heartbeat({"checked": n, "of": len(items)})
    return {"in_stock": all(i.get("qty", 1) <= 10 for i in items)}


@step
async def check_fraud(amount, validate):
    await asyncio.sleep(0.01)  # an async call to a scoring service
    return {"score": 0.9 if amount > 1000 else 0.1, "lines": validate["lines"]}


@step
async def review(order_id, amount, check_fraud, ctx):
    if check_fraud["score"] < 0.5:
        return {"approved": True, "by": "policy"}
    # Durable waits: the attempt ends here and the step runs again from its
    # start once the wait is over, so everything above must be idempotent.
    await ctx.sleep(1)
    decision = await ctx.wait_for_approval(
        data={"order_id": order_id, "amount": amount,
              "score": check_fraud["score"]}, timeout="24h")
    return {"approved": True, "by": "operator", "data": decision}


@step(idempotency_key="ship-${input.order_id}")
async def ship(order_id, check_stock, review, ctx):
    if not check_stock["in_stock"]:
        raise NonRetryableError("out of stock", kind="out_of_stock")
    log.info("shipping %s (idempotency key %s)", order_id,
             ctx.idempotency_key)
    return {"shipment": f"ship-{order_id}", "approved_by": review["by"]}


@workflow(name="py_order", queue="orders", version="1",
          output={"order_id": "input.order_id", "shipment": "steps.ship"})
def py_order():
    return validate >> [check_stock, check_fraud] >> review >> ship


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server", default="127.0.0.1:9740")
    parser.add_argument("--max-in-flight", type=int, default=8)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: "
                        "%(message)s")
    Worker(args.server, queues=["orders"], workflows=[py_order],
           max_in_flight=args.max_in_flight).run()


if __name__ == "__main__":
    main()
