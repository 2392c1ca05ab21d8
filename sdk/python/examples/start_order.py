"""Starts a py_order execution and waits for its result.

    /usr/bin/python3 examples/start_order.py --server 127.0.0.1:9740
    /usr/bin/python3 examples/start_order.py --amount 5000 --approve
"""

import argparse
import json
import os
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                ".."))

from cerebelum import Client  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description="start a py_order")
    parser.add_argument("--server", default="127.0.0.1:9740")
    parser.add_argument("--amount", type=float, default=120)
    parser.add_argument("--approve", action="store_true",
                        help="approve the order when it asks for approval")
    parser.add_argument("--timeout", type=float, default=60)
    args = parser.parse_args()
    client = Client(args.server, by="start_order.py")
    order_id = f"o-{uuid.uuid4().hex[:6]}"
    ex = client.start("py_order", {
        "order_id": order_id, "amount": args.amount,
        "items": [{"sku": "book", "qty": 1}]}, execution_id=order_id)
    print(f"started {ex.execution_id} ({ex.status})")
    deadline = time.monotonic() + args.timeout
    while args.approve and time.monotonic() < deadline:
        ex = client.describe(ex.execution_id)
        if ex.status == "awaiting_approval":
            print(f"approving {ex.execution_id}: {ex.approval_data}")
            client.approve(ex.execution_id, data={"note": "looks fine"})
            break
        if ex.done:
            break
        time.sleep(0.2)
    done = client.wait(ex.execution_id,
                       timeout=max(1.0, deadline - time.monotonic()))
    print(f"{done.status}: {json.dumps(done.result or done.error)}")
    return 0 if done.status == "completed" else 1


if __name__ == "__main__":
    sys.exit(main())
