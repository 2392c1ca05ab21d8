"""An in-process fake of the node's gRPC services for the SDK's tests.

It records every request with the time it arrived, hands out the tasks a
test queues, and fails calls on request, so tests can assert exactly what
the SDK sends.
"""

from __future__ import annotations

import collections
import json
import re
import socket
import threading
import time
from concurrent import futures

import grpc

from cerebelum_pb import (admin_pb2, admin_pb2_grpc, events_pb2, worker_pb2,
                          worker_pb2_grpc)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Recorded:
    def __init__(self, method, request, at):
        self.method = method
        self.request = request
        self.at = at

    def __repr__(self):
        return f"{self.method}@{self.at:.3f}"


class FakeWorkerService(worker_pb2_grpc.WorkerServiceServicer):
    def __init__(self):
        self.cond = threading.Condition()
        self.calls: list[Recorded] = []
        self.tasks = collections.deque()
        # method -> list of (code, details) returned by the next calls
        self.errors: dict[str, list] = collections.defaultdict(list)
        self.lease_timeout_ms = 30_000
        self.cancel_tokens: set[str] = set()   # heartbeat: cancel_requested
        self.stale_tokens: set[str] = set()    # heartbeat: FAILED_PRECONDITION

    # -- test side ---------------------------------------------------------
    def add_task(self, **fields) -> worker_pb2.Task:
        fields.setdefault("task_id", f"t-{len(self.tasks) + 1}")
        fields.setdefault("attempt_token", fields["task_id"] + "/a1")
        fields.setdefault("execution_id", "ex-1")
        fields.setdefault("workflow", "wf")
        fields.setdefault("queue", "q")
        fields.setdefault("attempt", 1)
        fields.setdefault("step", fields.get("task_type", "s"))
        for k in ("input_json", "resume_json"):
            if k in fields and not isinstance(fields[k], str):
                fields[k] = json.dumps(fields[k])
        task = worker_pb2.Task(**fields)
        with self.cond:
            self.tasks.append(task)
            self.cond.notify_all()
        return task

    def fail_next(self, method: str, code, details="injected", times=1):
        with self.cond:
            self.errors[method] += [(code, details)] * times

    def of(self, method: str, token: str | None = None) -> list[Recorded]:
        with self.cond:
            return [c for c in self.calls if c.method == method and (
                token is None or c.request.attempt_token == token)]

    def wait_for(self, method: str, count: int = 1, token: str | None = None,
                 timeout: float = 10.0) -> list[Recorded]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                got = [c for c in self.calls if c.method == method and (
                    token is None or c.request.attempt_token == token)]
                if len(got) >= count:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"{count} {method} call(s) expected within {timeout}"
                        f" s, got {len(got)}; calls: {self.calls}")
                self.cond.wait(left)

    def outcome(self, token: str, timeout: float = 10.0):
        """The CompleteTaskRequest recorded for ``token``."""
        return self.wait_for("CompleteTask", token=token,
                             timeout=timeout)[-1].request

    # -- service side --------------------------------------------------------
    def _record(self, method, request, context):
        with self.cond:
            self.calls.append(Recorded(method, request, time.monotonic()))
            self.cond.notify_all()
            errs = self.errors.get(method)
            err = errs.pop(0) if errs else None
        if err:
            context.abort(err[0], err[1])

    def Register(self, request, context):
        self._record("Register", request, context)
        names = []
        for src in request.workflows:
            if src.format == "json":
                names.append(json.loads(src.text)["name"])
            else:
                m = re.search(r"^name:\s*(\S+)", src.text, re.M)
                names.append(m.group(1) if m else src.name)
        return worker_pb2.RegisterResponse(
            workflows=names, lease_timeout_ms=self.lease_timeout_ms)

    def PollTask(self, request, context):
        self._record("PollTask", request, context)
        deadline = time.monotonic() + min(request.wait_ms or 30_000,
                                          30_000) / 1000
        with self.cond:
            while not self.tasks:
                left = deadline - time.monotonic()
                if left <= 0 or not context.is_active():
                    return worker_pb2.PollTaskResponse()
                self.cond.wait(min(left, 0.05))
            return worker_pb2.PollTaskResponse(task=self.tasks.popleft())

    def Heartbeat(self, request, context):
        self._record("Heartbeat", request, context)
        if request.attempt_token in self.stale_tokens:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                          f"attempt {request.attempt_token} is not leased to "
                          f"{request.worker_id}")
        return worker_pb2.HeartbeatResponse(
            lease_expires_at_ms=int(time.time() * 1000) + 30_000,
            cancel_requested=request.attempt_token in self.cancel_tokens)

    def CompleteTask(self, request, context):
        self._record("CompleteTask", request, context)
        return worker_pb2.CompleteTaskResponse(recorded=True)

    def Unregister(self, request, context):
        self._record("Unregister", request, context)
        return worker_pb2.UnregisterResponse(requeued=0)


def info(execution_id="ex-1", status="running", result=None, **kw):
    return admin_pb2.ExecutionInfo(
        execution_id=execution_id, workflow=kw.pop("workflow", "order"),
        status=status,
        result_json=json.dumps(result) if result is not None else "", **kw)


class FakeAdminService(admin_pb2_grpc.AdminServiceServicer):
    """Answers from ``self.executions`` (id -> ExecutionInfo)."""

    def __init__(self):
        self.cond = threading.Condition()
        self.calls: list[Recorded] = []
        self.executions: dict[str, admin_pb2.ExecutionInfo] = {}
        self.errors: dict[str, list] = collections.defaultdict(list)

    def fail_next(self, method: str, code, details="injected", times=1):
        with self.cond:
            self.errors[method] += [(code, details)] * times

    def _record(self, method, request, context=None):
        with self.cond:
            self.calls.append(Recorded(method, request, time.monotonic()))
            errs = self.errors.get(method)
            err = errs.pop(0) if errs else None
        if err and context is not None:
            context.abort(err[0], err[1])

    def _get(self, execution_id, context):
        ex = self.executions.get(execution_id)
        if ex is None:
            context.abort(grpc.StatusCode.NOT_FOUND,
                          f"unknown execution '{execution_id}'")
        return ex

    def StartExecution(self, request, context):
        self._record("StartExecution", request, context)
        eid = request.execution_id or f"gen-{len(self.executions) + 1}"
        created = eid not in self.executions
        if created:
            self.executions[eid] = admin_pb2.ExecutionInfo(
                execution_id=eid, workflow=request.workflow,
                status="running", input_json=request.input_json)
        return admin_pb2.StartExecutionResponse(
            execution=self.executions[eid], created=created)

    def DescribeExecution(self, request, context):
        self._record("DescribeExecution", request)
        return self._get(request.execution_id, context)

    def WaitForResult(self, request, context):
        self._record("WaitForResult", request)
        ex = self._get(request.execution_id, context)
        if ex.status in ("completed", "failed", "cancelled"):
            return ex
        time.sleep(min(request.timeout_ms, 60_000) / 1000)
        context.abort(grpc.StatusCode.DEADLINE_EXCEEDED,
                      f"execution {request.execution_id} not finished")

    def Approve(self, request, context):
        self._record("Approve", request)
        ex = self._get(request.execution_id, context)
        if ex.status != "awaiting_approval":
            context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                          f"execution {request.execution_id} is not awaiting"
                          " approval")
        ex.status = "running"
        return ex

    def Reject(self, request, context):
        self._record("Reject", request)
        return self._get(request.execution_id, context)

    def Cancel(self, request, context):
        self._record("Cancel", request)
        ex = self._get(request.execution_id, context)
        ex.status = "cancelled"
        return ex

    def ListExecutions(self, request, context):
        self._record("ListExecutions", request)
        ids = sorted(self.executions)
        start = int(request.page_token or 0)
        page = ids[start:start + request.page_size]
        nxt = start + request.page_size
        return admin_pb2.ListExecutionsResponse(
            executions=[self.executions[i] for i in page],
            next_page_token=str(nxt) if nxt < len(ids) else "")


class FakeNode:
    """A gRPC server on 127.0.0.1 with both fake services."""

    def __init__(self, port: int | None = None, with_workers: bool = True):
        self.with_workers = with_workers
        self.port = port or free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.worker = FakeWorkerService()
        self.admin = FakeAdminService()
        self.server = None

    def start(self) -> "FakeNode":
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=32))
        if self.with_workers:
            worker_pb2_grpc.add_WorkerServiceServicer_to_server(self.worker,
                                                                self.server)
        admin_pb2_grpc.add_AdminServiceServicer_to_server(self.admin,
                                                          self.server)
        self.server.add_insecure_port(self.address)
        self.server.start()
        return self

    def stop(self):
        if self.server is not None:
            self.server.stop(grace=0).wait()
            self.server = None


__all__ = ["FakeNode", "free_port", "info", "events_pb2"]
