"""The real `cerebelum node` as a child process on free ports (as
tests/node/node_fixture.cpp runs it)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from fake_node import free_port


class NodeProcess:
    def __init__(self, binary: str, workflows_dir: str | None = None,
                 extra_args: list[str] | None = None):
        if not binary or not os.access(binary, os.X_OK):
            raise RuntimeError(f"node binary {binary!r} is not executable "
                               "(CEREBELUM_BIN)")
        self.tmp = Path(tempfile.mkdtemp(prefix="cerebelum-py-e2e."))
        wf = Path(workflows_dir) if workflows_dir else self.tmp / "workflows"
        wf.mkdir(exist_ok=True)
        self.grpc_port = free_port()
        self.http_port = free_port()
        self.address = f"127.0.0.1:{self.grpc_port}"
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self.proc = subprocess.Popen(
            [binary, "node", "--data-dir", str(self.tmp / "data"),
             "--workflows", str(wf), "--listen", self.address,
             "--http", f"127.0.0.1:{self.http_port}", *(extra_args or [])],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self.wait_for_line("node ready", 30):
            out = self.output()
            self.stop()
            raise RuntimeError(f"the node did not get ready:\n{out}")

    def _read(self):
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_for_line(self, text: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not any(text in line for line in self.lines):
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    return any(text in line for line in self.lines)
                self._cond.wait(min(left, 0.1))
            return True

    def output(self) -> str:
        with self._cond:
            return "".join(self.lines)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(5)
        if not self._reader.is_alive():
            self.proc.stdout.close()
        shutil.rmtree(self.tmp, ignore_errors=True)
