"""The SDK against the real node binary ($CEREBELUM_BIN) started with
--auth token, and with TLS (docs/security.md): tokens as `authorization:
Bearer` metadata, refusals as Unauthenticated/PermissionDenied, a worker
whose token is refused stops with the error, TLS with the node's CA and a
foreign one."""

import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import unittest
import uuid
from pathlib import Path
from unittest import mock

from cerebelum import (Client, PermissionDenied, Unauthenticated, Unavailable,
                       Worker, step, workflow)
from node_process import NodeProcess

BIN = os.environ.get("CEREBELUM_BIN", "")
QUEUE = "secure_q"


@step
def double(n):
    return {"n2": n * 2}


@step
def report(double):
    return {"doubled": double["n2"]}


@workflow(name="py_secure", queue=QUEUE, version="1",
          output={"doubled": "steps.report.doubled"})
def py_secure():
    return double >> report


def cli(server, admin, *args, tls_ca=None):
    cmd = [BIN, "--server", server, "--token", admin]
    if tls_ca:
        cmd += ["--tls-ca", tls_ca]
    out = subprocess.run(cmd + list(args), capture_output=True, text=True,
                         timeout=60)
    if out.returncode != 0:
        raise AssertionError(f"{cmd + list(args)}: {out.stdout}{out.stderr}")
    return out.stdout


def make_token(server, admin, role, tls_ca=None):
    out = cli(server, admin, "token", "create", "--name",
              f"{role}-{uuid.uuid4().hex[:6]}", "--role", role, "--json",
              tls_ca=tls_ca)
    return json.loads(out)["secret"]


def admin_token(node):
    path = node.tmp / "data" / "admin.token"
    deadline = time.monotonic() + 10
    while not path.exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"no {path}:\n{node.output()}")
        time.sleep(0.05)
    return path.read_text().strip()



def wait_registered(test, w, node, timeout=20):
    """Waits until worker thread `w` has registered py_secure."""
    deadline = time.monotonic() + timeout
    while "py_secure" not in w.worker.registered_workflows:
        test.assertIsNone(w.error)
        test.assertLess(time.monotonic(), deadline, node.output())
        time.sleep(0.05)

class WorkerThread:
    def __init__(self, worker):
        self.worker = worker
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            self.worker.run()
        except Exception as e:  # checked by the tests
            self.error = e

    def stop(self):
        self.worker.stop()
        self.thread.join(30)


class WithTokens(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.node = NodeProcess(BIN, extra_args=["--auth", "token"])
        cls.admin = admin_token(cls.node)
        cls.worker_token = make_token(cls.node.address, cls.admin, "worker")
        cls.operator_token = make_token(cls.node.address, cls.admin,
                                        "operator")

    @classmethod
    def tearDownClass(cls):
        cls.node.stop()

    def test_a_worker_and_an_operator_with_tokens_run_an_execution(self):
        w = WorkerThread(Worker(self.node.address, [QUEUE],
                                workflows=[py_secure], poll_wait=2,
                                handle_signals=False,
                                token=self.worker_token))
        try:
            wait_registered(self, w, self.node)
            with Client(self.node.address, token=self.operator_token) as c:
                ex = c.start("py_secure", {"n": 21})
                done = c.wait(ex.execution_id, timeout=60)
                self.assertEqual(done.status, "completed", done)
                self.assertEqual(done.result, {"doubled": 42})
        finally:
            w.stop()
        self.assertIsNone(w.error)

    def test_the_token_defaults_to_the_environment(self):
        with mock.patch.dict(os.environ,
                             {"CEREBELUM_TOKEN": self.operator_token}):
            with Client(self.node.address) as c:
                self.assertIsInstance(c.workflows(), list)

    def test_a_client_without_a_token_is_unauthenticated(self):
        with mock.patch.dict(os.environ, {"CEREBELUM_TOKEN": ""}):
            with Client(self.node.address) as c:
                with self.assertRaises(Unauthenticated) as cm:
                    c.start("py_secure", {"n": 1})
        self.assertIn("UNAUTHENTICATED", str(cm.exception))
        self.assertIn("no token was sent", str(cm.exception))
        with Client(self.node.address, token="cbm_0123456789abcdef_"
                    + "0" * 64) as c:
            with self.assertRaises(Unauthenticated) as cm:
                c.start("py_secure", {"n": 1})
        self.assertIn("unknown, expired or revoked", str(cm.exception))

    def test_a_worker_token_may_not_start(self):
        with Client(self.node.address, token=self.worker_token) as c:
            with self.assertRaises(PermissionDenied):
                c.start("py_secure", {"n": 1})

    def test_a_worker_whose_token_is_refused_stops_with_the_error(self):
        reader = make_token(self.node.address, self.admin, "reader")
        for token, err in ((reader, PermissionDenied), ("", Unauthenticated)):
            with mock.patch.dict(os.environ, {"CEREBELUM_TOKEN": ""}):
                w = Worker(self.node.address, [QUEUE], steps=[double],
                           poll_wait=1, handle_signals=False, token=token,
                           reconnect_backoff=(0.05, 0.2))
            t = WorkerThread(w)
            with self.assertLogs("cerebelum.worker", "ERROR") as logs:
                t.thread.join(20)
            self.assertFalse(t.thread.is_alive(), "the worker kept retrying")
            self.assertIsInstance(t.error, err)
            self.assertIs(w.auth_error, t.error)
            self.assertTrue(any("the worker stops" in line
                                for line in logs.output), logs.output)


class WithTls(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.certs = Path(tempfile.mkdtemp(prefix="cerebelum-py-certs."))
        for d in ("ours", "foreign"):
            out = subprocess.run([BIN, "dev-certs", str(cls.certs / d)],
                                 capture_output=True, text=True, timeout=60)
            if out.returncode != 0:
                raise AssertionError(f"dev-certs: {out.stdout}{out.stderr}")
        ours = cls.certs / "ours"
        cls.node = NodeProcess(BIN, extra_args=[
            "--auth", "token", "--tls-cert", str(ours / "node.pem"),
            "--tls-key", str(ours / "node.key")])
        cls.server = f"localhost:{cls.node.grpc_port}"
        cls.ca = str(ours / "ca.pem")
        cls.admin = admin_token(cls.node)
        cls.operator = make_token(cls.server, cls.admin, "operator",
                                  tls_ca=cls.ca)

    @classmethod
    def tearDownClass(cls):
        cls.node.stop()
        shutil.rmtree(cls.certs, ignore_errors=True)

    def test_a_client_trusting_the_nodes_ca_starts(self):
        with Client(self.server, token=self.operator, tls_ca=self.ca) as c:
            # a worker over TLS too registers py_secure and runs it
            wt = make_token(self.server, self.admin, "worker", tls_ca=self.ca)
            w = WorkerThread(Worker(self.server, [QUEUE],
                                    workflows=[py_secure], poll_wait=2,
                                    handle_signals=False, token=wt,
                                    tls_ca=self.ca))
            try:
                wait_registered(self, w, self.node)
                ex = c.start("py_secure", {"n": 5})
                self.assertEqual(c.wait(ex.execution_id, 60).result,
                                 {"doubled": 10})
            finally:
                w.stop()
            self.assertIsNone(w.error)

    def test_a_client_certificate_can_be_given(self):
        # (the node does not require one here: no --tls-client-ca)
        ours = self.certs / "ours"
        with Client(self.server, token=self.operator, tls_ca=self.ca,
                    tls_cert=str(ours / "client.pem"),
                    tls_key=str(ours / "client.key")) as c:
            self.assertIsInstance(c.workflows(), list)

    def test_a_client_trusting_another_ca_fails_clearly(self):
        foreign = str(self.certs / "foreign" / "ca.pem")
        with Client(self.server, token=self.operator, tls_ca=foreign,
                    timeout=5) as c:
            with self.assertRaises(Unavailable) as cm:
                c.workflows()
        self.assertIn("TLS", str(cm.exception))
        self.assertIn(foreign, str(cm.exception))

    def test_plaintext_to_a_tls_node_fails(self):
        with Client(self.server, token=self.operator, timeout=5) as c:
            with self.assertRaises(Unavailable):
                c.workflows()


if __name__ == "__main__":
    unittest.main()
