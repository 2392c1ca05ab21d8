"""The stub generator: Debian's protoc output loads with Debian's
python3-protobuf, as a package of its own."""

import os
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

from cerebelum import protogen


class ProtoGen(unittest.TestCase):
    def test_generated_stubs_import_in_a_fresh_interpreter(self):
        with tempfile.TemporaryDirectory() as d:
            pkg = protogen.generate(d)
            self.assertEqual(pkg, Path(d, "cerebelum_pb"))
            self.assertIn("from . import events_pb2 as",
                          (pkg / "worker_pb2.py").read_text())
            code = ("import cerebelum_pb.worker_pb2_grpc as g, "
                    "cerebelum_pb.admin_pb2 as a; "
                    "print(g.WorkerServiceStub.__name__, "
                    "a.ExecutionInfo(status='x').status)")
            out = subprocess.run([sys.executable, "-c", code], cwd=d,
                                 capture_output=True, text=True,
                                 env={"PATH": os.environ.get("PATH", ""),
                                      "PYTHONDONTWRITEBYTECODE": "1"})
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertEqual(out.stdout.strip(), "WorkerServiceStub x")

    def test_a_missing_proto_dir_is_named(self):
        with tempfile.TemporaryDirectory() as d:
            with self.assertRaisesRegex(protogen.ProtoGenError,
                                        "missing .*worker.proto"):
                protogen.generate(d, Path(d, "nowhere"))

    def test_the_sdk_generates_its_stubs_on_first_use(self):
        # Without cerebelum_pb on the path, the SDK generates it into
        # $CEREBELUM_STUBS_DIR.
        sdk = Path(protogen.__file__).resolve().parents[1]
        with tempfile.TemporaryDirectory() as d:
            env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(sdk),
                   "CEREBELUM_STUBS_DIR": d, "PYTHONDONTWRITEBYTECODE": "1"}
            code = ("from cerebelum import _pb; "
                    "print(_pb.worker_pb2.Task(step='s').step)")
            out = subprocess.run([sys.executable, "-c", code],
                                 capture_output=True, text=True, env=env)
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertEqual(out.stdout.strip(), "s")
            self.assertTrue(Path(d, "cerebelum_pb", "admin_pb2.py").is_file())


if __name__ == "__main__":
    unittest.main()
