"""The operators' side: start executions, wait for them, decide approvals.

::

    client = Client("127.0.0.1:9740")
    ex = client.start("order", {"order_id": "o-1"})
    done = client.wait(ex.execution_id, timeout=60)
    print(done.status, done.result)
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

import grpc

from . import _pb
from ._connect import Connection
from .errors import (CerebelumError, DeadlineExceeded, ExecutionFailed,
                     Overloaded, from_rpc_error)
from .workflows import Workflow

TERMINAL = ("completed", "failed", "cancelled")


def _json(text: str) -> Any:
    return json.loads(text) if text else None


@dataclasses.dataclass
class Execution:
    """What the node reports about one execution (admin ExecutionInfo)."""

    execution_id: str
    workflow: str
    status: str
    input: Any = None
    result: Any = None
    error: dict | None = None
    workflow_version: int = 0
    created_at_ms: int = 0
    updated_at_ms: int = 0
    wake_at_ms: int = 0
    awaiting_step: str = ""
    approval_data: Any = None
    history_length: int = 0
    phase: str = ""
    created: bool | None = None  # start(): False when the id existed

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    @classmethod
    def from_proto(cls, info, created: bool | None = None) -> "Execution":
        err = None
        if info.HasField("error"):
            e = info.error
            err = {"kind": e.kind, "message": e.message,
                   "details": _json(e.details_json),
                   "retryable": e.retryable}
        return cls(execution_id=info.execution_id, workflow=info.workflow,
                   status=info.status, input=_json(info.input_json),
                   result=_json(info.result_json), error=err,
                   workflow_version=info.workflow_version,
                   created_at_ms=info.created_at_ms,
                   updated_at_ms=info.updated_at_ms,
                   wake_at_ms=info.wake_at_ms,
                   awaiting_step=info.awaiting_step,
                   approval_data=_json(info.approval_data_json),
                   history_length=info.history_length, phase=info.phase,
                   created=created)


class Client:
    """A blocking AdminService client. Errors are CerebelumError
    subclasses (NotFound, InvalidArgument, FailedPrecondition,
    Unavailable, DeadlineExceeded, Unauthenticated, PermissionDenied).

    ``token`` (default ``$CEREBELUM_TOKEN``) is sent as ``authorization:
    Bearer <token>`` on every call; ``tls_ca`` (a PEM CA file) connects
    with TLS and checks the node's certificate against the host of
    ``server``; ``tls_cert``/``tls_key`` add a client certificate."""

    #: the node's longest single WaitForResult (admin.proto)
    MAX_WAIT_CHUNK = 60.0

    def __init__(self, server: str, *, by: str = "python-sdk",
                 timeout: float = 10.0, channel_options: list | None = None,
                 token: str | None = None, tls_ca: str | None = None,
                 tls_cert: str | None = None, tls_key: str | None = None):
        self.server = server
        self.by = by
        self.timeout = timeout
        self._conn = Connection(server, token, tls_ca, tls_cert, tls_key)
        self._channel = self._conn.channel(channel_options)
        self._stub = _pb.admin_pb2_grpc.AdminServiceStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _call(self, method: str, req, what: str, timeout=None):
        try:
            return getattr(self._stub, method)(
                req, timeout=timeout or self.timeout,
                metadata=self._conn.metadata)
        except grpc.RpcError as e:
            raise from_rpc_error(e, what, self._conn.hint(e.code())) from None

    def start(self, workflow, input: Any = None,
              execution_id: str | None = None) -> Execution:
        """Starts ``workflow`` (a name or a @workflow). The same
        ``execution_id`` twice returns the first execution
        (``created`` False). A start the node refuses as over capacity
        (nothing written) is tried again every second for up to the
        client's ``timeout``, then raises Overloaded."""
        name = workflow.name if isinstance(workflow, Workflow) else workflow
        req = _pb.admin_pb2.StartExecutionRequest(
            workflow=name, input_json=json.dumps(
                {} if input is None else input),
            execution_id=execution_id or "", started_by=self.by)
        give_up = time.monotonic() + self.timeout
        while True:
            try:
                resp = self._call("StartExecution", req, f"start {name}")
                break
            except Overloaded:
                if time.monotonic() + 1.0 > give_up:
                    raise
                time.sleep(1.0)
        return Execution.from_proto(resp.execution, resp.created)

    def describe(self, execution_id: str) -> Execution:
        req = _pb.admin_pb2.DescribeExecutionRequest(
            execution_id=execution_id)
        return Execution.from_proto(self._call(
            "DescribeExecution", req, f"describe {execution_id}"))

    def wait(self, execution_id: str, timeout: float = 60.0) -> Execution:
        """Blocks until the execution is terminal; DeadlineExceeded (also a
        TimeoutError) after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise DeadlineExceeded(
                    f"execution {execution_id} not finished after "
                    f"{timeout:g} s", grpc.StatusCode.DEADLINE_EXCEEDED)
            chunk = min(left, self.MAX_WAIT_CHUNK)
            req = _pb.admin_pb2.WaitForResultRequest(
                execution_id=execution_id,
                timeout_ms=max(1, int(chunk * 1000)))
            try:
                info = self._stub.WaitForResult(req, timeout=chunk + 5,
                                                metadata=self._conn.metadata)
            except grpc.RpcError as e:
                if e.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                    continue
                raise from_rpc_error(e, f"wait {execution_id}",
                                     self._conn.hint(e.code())) from None
            ex = Execution.from_proto(info)
            if ex.done:
                return ex

    def result(self, execution_id: str, timeout: float = 60.0) -> Any:
        """The result of a completed execution; ExecutionFailed if it
        failed or was cancelled."""
        ex = self.wait(execution_id, timeout)
        if ex.status != "completed":
            raise ExecutionFailed(ex)
        return ex.result

    def approve(self, execution_id: str, data: Any = None) -> Execution:
        req = _pb.admin_pb2.ApproveRequest(
            execution_id=execution_id, by=self.by,
            data_json=json.dumps(data) if data is not None else "")
        return Execution.from_proto(self._call(
            "Approve", req, f"approve {execution_id}"))

    def reject(self, execution_id: str, reason: str = "") -> Execution:
        req = _pb.admin_pb2.RejectRequest(execution_id=execution_id,
                                          by=self.by, reason=reason)
        return Execution.from_proto(self._call(
            "Reject", req, f"reject {execution_id}"))

    def cancel(self, execution_id: str, reason: str = "") -> Execution:
        req = _pb.admin_pb2.CancelRequest(execution_id=execution_id,
                                          by=self.by, reason=reason)
        return Execution.from_proto(self._call(
            "Cancel", req, f"cancel {execution_id}"))

    def list(self, status: str = "", workflow: str = "",
             page_size: int = 100) -> list[Execution]:
        """Every execution matching the filters (follows the pages)."""
        out: list[Execution] = []
        token = ""
        while True:
            req = _pb.admin_pb2.ListExecutionsRequest(
                status=status, workflow=workflow, page_size=page_size,
                page_token=token)
            resp = self._call("ListExecutions", req, "list executions")
            out += [Execution.from_proto(i) for i in resp.executions]
            token = resp.next_page_token
            if not token:
                return out

    def workflows(self) -> list[str]:
        resp = self._call("ListWorkflows",
                          _pb.admin_pb2.ListWorkflowsRequest(),
                          "list workflows")
        return [w.name for w in resp.workflows]


__all__ = ["Client", "Execution", "CerebelumError", "TERMINAL"]
