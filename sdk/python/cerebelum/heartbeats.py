"""Heartbeats of running attempts, sent from a thread of their own.

The event loop may be blocked by a careless ``async`` step, and a plain
step may hold the CPU: neither must cost an attempt its lease. One daemon
thread keeps a schedule of every running attempt and sends its heartbeats
with the blocking gRPC stub's futures, so one slow call does not delay the
others.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time

import grpc

from . import _pb
from .steps import StepContext

log = logging.getLogger("cerebelum.worker")


class Attempt:
    """One leased task while this worker runs it."""

    def __init__(self, task, ctx: StepContext, period: float,
                 loop: asyncio.AbstractEventLoop):
        self.task = task
        self.ctx = ctx
        self.period = period
        self.loop = loop
        self.async_task: asyncio.Task | None = None
        self.cancel_reason: str | None = None
        self.next_due = time.monotonic() + period
        self.details_sent = 0
        self.in_flight_hb = False

    def request_cancel(self, reason: str) -> None:
        """Thread-safe: stop the step (the reason decides what is
        reported)."""
        if self.cancel_reason is not None:
            return
        self.cancel_reason = reason
        self.ctx._cancel()
        if self.async_task is not None:
            try:
                self.loop.call_soon_threadsafe(self.async_task.cancel)
            except RuntimeError:  # the loop is closed
                pass


class Heartbeater(threading.Thread):
    """Sends the heartbeats of every running attempt, off the event loop."""

    def __init__(self, conn, worker_id: str, options):
        super().__init__(name="cerebelum-heartbeat", daemon=True)
        self.worker_id = worker_id
        self.metadata = conn.metadata
        self.channel = conn.channel(options)
        self.stub = _pb.worker_pb2_grpc.WorkerServiceStub(self.channel)
        self.cond = threading.Condition()
        self.attempts: dict[str, Attempt] = {}
        self.stopping = False
        self.on_unknown_worker = None  # set by the worker
        self.on_auth_error = None  # set by the worker

    def add(self, a: Attempt) -> None:
        with self.cond:
            self.attempts[a.task.attempt_token] = a
            self.cond.notify()

    def remove(self, a: Attempt) -> None:
        with self.cond:
            self.attempts.pop(a.task.attempt_token, None)

    def poke(self, a: Attempt) -> None:
        with self.cond:
            a.next_due = time.monotonic()
            self.cond.notify()

    def stop(self) -> None:
        with self.cond:
            self.stopping = True
            self.cond.notify()
        self.join(timeout=5)
        self.channel.close()

    def run(self) -> None:
        while True:
            with self.cond:
                if self.stopping:
                    return
                now = time.monotonic()
                due = [a for a in self.attempts.values()
                       if a.next_due <= now and not a.in_flight_hb]
                if not due:
                    waits = [a.next_due - now for a in self.attempts.values()
                             if not a.in_flight_hb]
                    self.cond.wait(timeout=min(waits) if waits else None)
                    continue
                for a in due:
                    a.next_due = now + a.period
                    a.in_flight_hb = True
            for a in due:
                self._send(a)

    def _send(self, a: Attempt) -> None:
        ctx = a.ctx
        req = _pb.worker_pb2.HeartbeatRequest(
            worker_id=self.worker_id, attempt_token=a.task.attempt_token)
        version = ctx._details_version
        if version != a.details_sent and ctx.details is not None:
            req.details_json = json.dumps(ctx.details)
        try:
            fut = self.stub.Heartbeat.future(req, timeout=max(a.period, 1.0),
                                             metadata=self.metadata)
        except Exception as e:  # the channel is closed: we are stopping
            log.debug("heartbeat not sent: %s", e)
            a.in_flight_hb = False
            return

        def done(f):
            a.in_flight_hb = False
            try:
                resp = f.result()
            except grpc.RpcError as e:
                self._failed(a, e)
                return
            a.details_sent = version
            if resp.cancel_requested:
                log.info("step %s of %s: the node asked to cancel",
                         a.task.step, a.task.execution_id)
                a.request_cancel("cancel_requested")
            with self.cond:
                self.cond.notify()
        fut.add_done_callback(done)

    def _failed(self, a: Attempt, e: grpc.RpcError) -> None:
        code = e.code()
        if code == grpc.StatusCode.FAILED_PRECONDITION:
            log.warning("step %s of %s attempt %d: lease lost (%s); "
                        "stopping it", a.task.step, a.task.execution_id,
                        a.task.attempt, e.details())
            a.request_cancel("lease_lost")
        elif code in (grpc.StatusCode.UNAUTHENTICATED,
                      grpc.StatusCode.PERMISSION_DENIED) and \
                self.on_auth_error:
            self.on_auth_error(e)
        elif code == grpc.StatusCode.NOT_FOUND and self.on_unknown_worker:
            log.warning("heartbeat: %s", e.details())
            self.on_unknown_worker()
        else:
            log.warning("heartbeat for step %s of %s failed: %s: %s",
                        a.task.step, a.task.execution_id, code.name,
                        e.details())
        with self.cond:
            self.cond.notify()
