"""A worker for a workflow written in YAML (greeting.yaml): the worker
registers the file and serves its `task:` types.

    /usr/bin/python3 examples/yaml_worker.py --server 127.0.0.1:9740
    build/src/cerebelum start py_greeting --input '{"name": "ada"}' --wait
"""

import argparse
import logging
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, ".."))

from cerebelum import Worker, step  # noqa: E402

WORKFLOW = os.path.join(here, "greeting.yaml")


@step("greetings.greet")
def greet(name):
    return f"hello, {name}"


@step("greetings.shout")
async def shout(text, ctx):
    return {"text": text.upper() + "!", "attempt": ctx.attempt}


def make_worker(server: str, **kw) -> Worker:
    return Worker(server, queues=["greetings"], steps=[greet, shout],
                  workflows=[WORKFLOW], **kw)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="greeting.yaml worker")
    parser.add_argument("--server", default="127.0.0.1:9740")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    make_worker(args.server).run()
