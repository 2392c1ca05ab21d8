"""The worker: registers with a node, long-polls its queues, runs steps.

::

    Worker("127.0.0.1:9740", queues=["orders"], workflows=[order]).run()

* At most ``max_in_flight`` attempts run at once; the worker polls only
  while it has a free slot, with up to ``pollers`` (default 4) long-polls
  open at once.
* ``async`` steps run on the worker's event loop; plain steps each run on a
  thread of their own, so a blocking or CPU-bound step never holds up the
  loop.
* Heartbeats are sent by a dedicated thread (not the event loop), every
  third of the task's heartbeat timeout (or of the lease when the step has
  none), so even a step that blocks the event loop keeps its lease.
  ``ctx.heartbeat(details)`` attaches progress to the next one.
* A heartbeat answered with ``cancel_requested`` cancels the step (async:
  ``CancelledError`` inside it; plain: ``ctx.cancelled`` turns true) and
  the attempt is reported as failed with kind ``cancelled``. A heartbeat
  refused as stale (the lease was lost, the step timed out) cancels the
  step and nothing is reported: the node has moved on.
* SIGINT/SIGTERM (or ``stop()``): stop polling, let running steps finish
  for ``shutdown_grace`` seconds, hand the rest back, ``Unregister``. A
  second signal stops at once.
* When the node is unreachable the worker retries with exponential backoff
  (``reconnect_backoff``) and registers again; results waiting to be
  reported are kept and retried.
* ``token`` (default ``$CEREBELUM_TOKEN``) is sent as ``authorization:
  Bearer <token>`` on every call; ``tls_ca`` (plus ``tls_cert``/``tls_key``
  for mutual TLS) connects with TLS. A node that refuses the token
  (UNAUTHENTICATED: none, unknown, expired or revoked; PERMISSION_DENIED:
  not a worker token, a queue outside its scopes, a worker id of another
  token) is not retried: the worker logs an error saying so, stops at once
  (running steps are cancelled, their tasks go back to the node when their
  leases expire) and ``run()`` raises ``Unauthenticated`` or
  ``PermissionDenied``. Retrying cannot help until someone changes the
  token, which means restarting the worker anyway.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import signal
import socket
import threading
import time
import uuid
from typing import Any, Iterable

import grpc

from . import _pb
from ._connect import Connection
from .errors import (CerebelumError, RegistrationError, StepError,
                     from_rpc_error)
from .heartbeats import Attempt, Heartbeater
from .runner import call_async, call_in_thread, error_info
from .steps import Step, StepContext, Suspend
from .workflows import Workflow, to_source

log = logging.getLogger("cerebelum.worker")

_RETRY_CODES = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                grpc.StatusCode.CANCELLED, grpc.StatusCode.UNKNOWN,
                grpc.StatusCode.INTERNAL, grpc.StatusCode.RESOURCE_EXHAUSTED)
_AUTH_CODES = (grpc.StatusCode.UNAUTHENTICATED,
               grpc.StatusCode.PERMISSION_DENIED)


class Worker:
    """Runs the steps of one or more queues for a node."""

    def __init__(self, server: str, queues: Iterable[str], *,
                 steps: Iterable[Step] = (), workflows: Iterable = (),
                 max_in_flight: int = 4, pollers: int | None = None,
                 worker_id: str | None = None,
                 poll_wait: float = 30.0, shutdown_grace: float = 30.0,
                 reconnect_backoff: tuple[float, float] = (0.1, 5.0),
                 handle_signals: bool = True,
                 channel_options: list | None = None,
                 token: str | None = None, tls_ca: str | None = None,
                 tls_cert: str | None = None, tls_key: str | None = None):
        self.server = server
        self._conn = Connection(server, token, tls_ca, tls_cert, tls_key)
        self._md = self._conn.metadata
        self.queues = list(queues)
        if not self.queues or any(not q for q in self.queues):
            raise ValueError("Worker needs at least one non-empty queue name")
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be >= 1")
        self.worker_id = worker_id or \
            f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.max_in_flight = max_in_flight
        # Concurrent long-polls: one poll hands out one task, so a single
        # poller caps a busy worker at one task per round trip.
        self.pollers = max(1, min(max_in_flight, pollers or 4))
        self.poll_wait = poll_wait
        self.shutdown_grace = shutdown_grace
        self.reconnect_backoff = reconnect_backoff
        self.handle_signals = handle_signals
        self.channel_options = channel_options or []
        self.sources = []
        self.steps: dict[str, Step] = {}
        all_steps = list(steps)
        for w in workflows:
            if isinstance(w, Workflow):
                all_steps += w.steps()
            self.sources.append(to_source(w))
        for s in all_steps:
            if not isinstance(s, Step):
                raise TypeError(f"not a @step: {s!r}")
            known = self.steps.get(s.task)
            if known is not None and known.fn is not s.fn:
                raise ValueError(f"task type {s.task!r} is served by two "
                                 f"functions ({known.fn.__qualname__}, "
                                 f"{s.fn.__qualname__})")
            self.steps[s.task] = s
        if not self.steps:
            raise ValueError("Worker has no steps to run (pass steps=[...] "
                             "or workflows=[...])")
        self.registered_workflows: list[str] = []
        self.lease_timeout_ms = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self._forced = False
        self._stop_requested = threading.Event()
        self._inflight: set[asyncio.Task] = set()
        self._attempts: set[Attempt] = set()
        self._poll_calls: set = set()
        self._registered_gen = 0
        self._reg_lock: asyncio.Lock | None = None
        self._wake: asyncio.Event | None = None
        #: why the node refused this worker's token (run() raises it)
        self.auth_error: CerebelumError | None = None

    # -- public ------------------------------------------------------------
    def run(self) -> None:
        """Runs until stopped (a signal or ``stop()``)."""
        asyncio.run(self.run_async())

    def stop(self, force: bool = False) -> None:
        """Thread-safe. Graceful stop; ``force`` (or a second call) stops
        running steps at once and hands their tasks back."""
        self._stop_requested.set()
        loop = self._loop
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self._begin_stop, force)
            except RuntimeError:
                pass

    async def run_async(self) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._reg_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._channel = self._conn.aio_channel(self.channel_options)
        self._stub = _pb.worker_pb2_grpc.WorkerServiceStub(self._channel)
        self._hb = Heartbeater(self._conn, self.worker_id,
                                self.channel_options)
        self._hb.on_auth_error = lambda e: loop.call_soon_threadsafe(
            self._auth_failed, e, "heartbeat")
        self._hb.on_unknown_worker = lambda: loop.call_soon_threadsafe(
            self._note_unknown_worker)
        self._hb.start()
        signals = self._install_signals(loop)
        if self._stop_requested.is_set():
            self._begin_stop(False)
        try:
            await self._register()
            slots = asyncio.Semaphore(self.max_in_flight)
            await asyncio.gather(*(self._poll_loop(slots)
                                   for _ in range(self.pollers)))
            await self._drain()
        finally:
            for s in signals:
                loop.remove_signal_handler(s)
            for t in list(self._inflight):
                t.cancel()
            if self.registered_workflows is not None and self._registered_gen:
                await self._unregister()
            self._hb.stop()
            await self._channel.close()
            log.info("worker %s stopped", self.worker_id)
        if self.auth_error is not None:
            raise self.auth_error

    # -- lifecycle -----------------------------------------------------------
    def _install_signals(self, loop) -> list:
        if not self.handle_signals or \
                threading.current_thread() is not threading.main_thread():
            return []
        installed = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self._on_signal, sig)
                installed.append(sig)
            except (NotImplementedError, RuntimeError):
                pass
        return installed

    def _on_signal(self, sig) -> None:
        log.info("worker %s: %s, stopping%s", self.worker_id,
                 signal.Signals(sig).name,
                 " now" if self._stopping else
                 f" (running steps get {self.shutdown_grace:g} s; again to "
                 "stop at once)")
        self._begin_stop(self._stopping)

    def _begin_stop(self, force: bool) -> None:
        if self._stopping:
            force = True
        self._stopping = True
        for call in list(self._poll_calls):
            call.cancel()
        if self._wake is not None:
            self._wake.set()
        if force and not self._forced:
            self._forced = True
            for a in list(self._attempts):
                a.request_cancel("shutdown")

    def _auth_failed(self, e, what: str) -> None:
        """The node refused the token: log why, stop at once (retrying
        cannot help until the token changes); run() raises the error."""
        if self.auth_error is not None:
            return
        code = e.code()
        self.auth_error = from_rpc_error(
            e, f"worker {self.worker_id} {what} on {self.server}",
            self._conn.hint(code))
        log.error("%s; the worker stops (a new token needs a restart)",
                  self.auth_error)
        self._begin_stop(True)

    def _note_unknown_worker(self) -> None:
        # A restarted node forgot us: the next call registers again.
        self._registered_gen = -abs(self._registered_gen)

    async def _backoff_sleep(self, delay: float) -> float:
        """Sleeps ``delay`` (with jitter) unless stopping; the next delay."""
        lo, hi = self.reconnect_backoff
        await self._sleep_unless_stopping(delay * (0.5 + random.random() / 2))
        return min(hi, max(lo, delay * 2))

    async def _sleep_unless_stopping(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._wake.wait(), seconds)
        except asyncio.TimeoutError:
            pass

    # -- calls -----------------------------------------------------------------
    async def _register(self, seen_gen: int | None = None) -> bool:
        """Registers (again). False if stopping before it succeeded."""
        async with self._reg_lock:
            if seen_gen is not None and self._registered_gen > 0 and \
                    self._registered_gen != seen_gen:
                return True  # another caller registered meanwhile
            req = _pb.worker_pb2.RegisterRequest(
                worker_id=self.worker_id, queues=self.queues,
                max_in_flight=self.max_in_flight,
                workflows=[_pb.worker_pb2.WorkflowSource(
                    name=s.name, format=s.format, text=s.text)
                    for s in self.sources])
            delay = self.reconnect_backoff[0]
            while True:
                if self._stopping and self._forced:
                    return False
                try:
                    resp = await self._stub.Register(req, timeout=10,
                                                     metadata=self._md)
                    break
                except grpc.aio.AioRpcError as e:
                    if e.code() in _AUTH_CODES:
                        self._auth_failed(e, "register")
                        return False
                    if e.code() == grpc.StatusCode.UNIMPLEMENTED:
                        raise RegistrationError(
                            f"the node {self.server} does not serve the "
                            f"WorkerService (an older node?): {e.details()}",
                            e.code()) from None
                    if e.code() in (grpc.StatusCode.INVALID_ARGUMENT,
                                    grpc.StatusCode.NOT_FOUND):
                        raise RegistrationError(
                            f"the node {self.server} refused worker "
                            f"{self.worker_id}: {e.details()}",
                            e.code()) from None
                    if self._stopping and not self._attempts:
                        return False
                    log.warning("register with %s: %s: %s; retrying in "
                                "%.1f s", self.server, e.code().name,
                                e.details(), delay)
                    delay = await self._backoff_sleep(delay)
            self.registered_workflows = list(resp.workflows)
            self.lease_timeout_ms = resp.lease_timeout_ms
            self._registered_gen = abs(self._registered_gen) + 1
            log.info("worker %s registered with %s: queues %s, workflows %s",
                     self.worker_id, self.server, ",".join(self.queues),
                     ",".join(self.registered_workflows) or "-")
            return True

    async def _poll_loop(self, slots: asyncio.Semaphore) -> None:
        """One poller; ``pollers`` of them share the in-flight slots."""
        delay = self.reconnect_backoff[0]
        while not self._stopping:
            await slots.acquire()
            if self._stopping:
                slots.release()
                break
            if self._registered_gen <= 0:
                if not await self._register(self._registered_gen):
                    slots.release()
                    break
            gen = self._registered_gen
            req = _pb.worker_pb2.PollTaskRequest(
                worker_id=self.worker_id, queues=self.queues,
                wait_ms=int(self.poll_wait * 1000))
            call = self._stub.PollTask(req, timeout=self.poll_wait + 10,
                                       metadata=self._md)
            self._poll_calls.add(call)
            try:
                resp = await call
            except (grpc.aio.AioRpcError, asyncio.CancelledError) as e:
                slots.release()
                if self._stopping:
                    break
                if isinstance(e, asyncio.CancelledError):
                    raise
                code = e.code()
                if code in _AUTH_CODES:
                    self._auth_failed(e, "poll")
                    break
                if code == grpc.StatusCode.NOT_FOUND:
                    log.warning("poll: %s; registering again", e.details())
                    self._registered_gen = -abs(gen)
                elif code in _RETRY_CODES:
                    log.warning("poll %s: %s: %s; retrying in %.1f s",
                                self.server, code.name, e.details(), delay)
                    if code == grpc.StatusCode.UNAVAILABLE:
                        self._registered_gen = -abs(gen)
                    delay = await self._backoff_sleep(delay)
                else:
                    log.error("poll %s: %s: %s; retrying in %.1f s",
                              self.server, code.name, e.details(), delay)
                    delay = await self._backoff_sleep(delay)
                continue
            finally:
                self._poll_calls: set = set()
            delay = self.reconnect_backoff[0]
            if not resp.HasField("task"):
                slots.release()
                continue
            t = asyncio.ensure_future(self._handle(resp.task))
            self._inflight.add(t)

            def done(t, slots=slots):
                self._inflight.discard(t)
                slots.release()
            t.add_done_callback(done)

    async def _drain(self) -> None:
        if not self._inflight:
            return
        log.info("worker %s: waiting up to %g s for %d running step(s)",
                 self.worker_id, self.shutdown_grace, len(self._inflight))
        _, pending = await asyncio.wait(list(self._inflight),
                                        timeout=self.shutdown_grace)
        if pending:
            log.warning("worker %s: handing back %d step(s) still running",
                        self.worker_id, len(pending))
            self._begin_stop(True)
            await asyncio.wait(pending, timeout=2)

    async def _unregister(self) -> None:
        try:
            resp = await self._stub.Unregister(
                _pb.worker_pb2.UnregisterRequest(worker_id=self.worker_id),
                timeout=5, metadata=self._md)
            log.info("worker %s unregistered (%d task(s) handed back)",
                     self.worker_id, resp.requeued)
        except grpc.aio.AioRpcError as e:
            log.warning("unregister: %s: %s", e.code().name, e.details())

    # -- one attempt -------------------------------------------------------
    def _period(self, task) -> float:
        spans = [ms for ms in (task.heartbeat_timeout_ms,
                               self.lease_timeout_ms) if ms > 0]
        remaining = task.lease_expires_at_ms - int(time.time() * 1000)
        if task.lease_expires_at_ms > 0 and remaining > 0:
            spans.append(remaining)
        if not spans:
            return 10.0
        return min(30.0, max(0.05, min(spans) / 3000.0))

    async def _handle(self, task) -> None:
        """Runs ``task``, then each next task the node hands back with the
        completion (``want_next``), in the same in-flight slot."""
        while task is not None:
            task = await self._attempt(task)

    async def _attempt(self, task):
        """Runs one attempt and reports it; returns the next task leased with
        the answer, if any."""
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        step = self.steps.get(task.task_type)
        done = _pb.worker_pb2.CompleteTaskRequest(
            worker_id=self.worker_id, attempt_token=task.attempt_token)
        if step is None:
            log.error("task type %r (step %s of %s) is not served by this "
                      "worker (it serves %s)", task.task_type, task.step,
                      task.execution_id, ", ".join(sorted(self.steps)))
            done.error.CopyFrom(_pb.events_pb2.ErrorInfo(
                kind="unknown_task_type",
                message=f"worker {self.worker_id} has no step for task type "
                f"'{task.task_type}' (it serves: "
                f"{', '.join(sorted(self.steps))})", retryable=False))
            return await self._complete(task, done)
        try:
            value = json.loads(task.input_json) if task.input_json else None
            resume = json.loads(task.resume_json) if task.resume_json else {}
            if not isinstance(resume, dict):
                raise ValueError("resume_json is not an object")
        except ValueError as e:
            done.error.CopyFrom(_pb.events_pb2.ErrorInfo(
                kind="invalid_input", message=f"step '{task.step}': the "
                f"task's JSON is malformed: {e}", retryable=False))
            return await self._complete(task, done)
        attempt: Attempt | None = None
        ctx = StepContext(
            execution_id=task.execution_id, workflow=task.workflow,
            step=task.step, attempt=task.attempt, task_id=task.task_id,
            task_type=task.task_type, queue=task.queue,
            idempotency_key=task.idempotency_key, worker_id=self.worker_id,
            input=value, resume=resume,
            heartbeat_timeout=task.heartbeat_timeout_ms / 1000.0,
            is_async=step.is_async,
            on_heartbeat=lambda: attempt and self._hb.poke(attempt))
        attempt = Attempt(task, ctx, self._period(task), loop)
        self._attempts.add(attempt)
        self._hb.add(attempt)
        if self._forced:
            attempt.request_cancel("shutdown")
        log.debug("step %s of %s attempt %d started", task.step,
                  task.execution_id, task.attempt)
        try:
            outcome = await self._run_step(step, value, ctx, attempt)
        finally:
            self._hb.remove(attempt)
            self._attempts.discard(attempt)
        elapsed = (time.monotonic() - started) * 1000
        kind, payload = outcome
        if attempt.cancel_reason in ("lease_lost", "shutdown") and \
                kind != "ok":
            log.info("step %s of %s attempt %d stopped (%s); not reported",
                     task.step, task.execution_id, task.attempt,
                     attempt.cancel_reason)
            return None
        if kind == "ok":
            try:
                done.result_json = json.dumps(payload)
            except (TypeError, ValueError) as e:
                done.error.CopyFrom(_pb.events_pb2.ErrorInfo(
                    kind="result_not_json", message=f"step '{task.step}' "
                    f"returned a value that is not JSON: {e}",
                    retryable=False))
        elif kind == "suspend":
            s: Suspend = payload
            done.suspend.CopyFrom(_pb.worker_pb2.Suspend(
                wait_key=s.wait_key, sleep_ms=s.sleep_ms,
                approval=s.approval, approval_data_json=s.data_json,
                approval_timeout_ms=s.timeout_ms))
        elif kind == "cancelled":
            done.error.CopyFrom(_pb.events_pb2.ErrorInfo(
                kind="cancelled", message=f"step '{task.step}' was "
                "cancelled at the node's request", retryable=False))
        else:
            done.error.CopyFrom(error_info(payload))
        what = done.WhichOneof("outcome")
        log.info("step %s of %s attempt %d: %s in %.1f ms%s", task.step,
                 task.execution_id, task.attempt,
                 {"result_json": "completed", "error": "failed",
                  "suspend": "suspended"}[what], elapsed,
                 f" ({done.error.kind}: {done.error.message})"
                 if what == "error" else
                 f" ({done.suspend.wait_key})" if what == "suspend" else "")
        return await self._complete(task, done)

    async def _run_step(self, step: Step, value, ctx: StepContext,
                        attempt: Attempt) -> tuple[str, Any]:
        """("ok", result) | ("suspend", Suspend) | ("cancelled", None) |
        ("raise", exception)."""
        try:
            args, kwargs = step.bind(value, ctx)
        except StepError as e:
            return "raise", e
        if step.is_async:
            attempt.async_task = asyncio.ensure_future(
                call_async(step.fn, args, kwargs))
            if attempt.cancel_reason is not None:
                attempt.async_task.cancel()
            try:
                return await asyncio.shield(attempt.async_task)
            except asyncio.CancelledError:
                if attempt.async_task.cancelled():
                    return "cancelled", None
                attempt.async_task.cancel()  # the worker itself is cancelled
                raise
        outcome = await call_in_thread(step.fn, args, kwargs,
                                        f"cerebelum-step-{ctx.step}")
        if outcome[0] == "ok" and asyncio.iscoroutine(outcome[1]):
            return await call_async(lambda: outcome[1], (), {})
        return outcome

    async def _complete(self, task, req):
        """Reports an outcome; returns the next task the node leased with the
        answer (asked for unless the worker is stopping), or None."""
        delay = self.reconnect_backoff[0]
        while True:
            gen = self._registered_gen
            req.want_next = not self._stopping
            try:
                resp = await self._stub.CompleteTask(req, timeout=10,
                                                     metadata=self._md)
                if not resp.recorded:
                    log.info("step %s of %s attempt %d: outcome was already "
                             "recorded", task.step, task.execution_id,
                             task.attempt)
                if resp.HasField("next_task"):
                    return resp.next_task
                return None
            except grpc.aio.AioRpcError as e:
                code = e.code()
                if code in _AUTH_CODES:
                    log.error("step %s of %s attempt %d: outcome not "
                              "reported: %s: %s", task.step,
                              task.execution_id, task.attempt, code.name,
                              e.details())
                    self._auth_failed(e, "complete")
                    return None
                if code == grpc.StatusCode.FAILED_PRECONDITION:
                    log.warning("step %s of %s attempt %d: the node refused "
                                "the outcome as stale: %s", task.step,
                                task.execution_id, task.attempt, e.details())
                    return
                if code == grpc.StatusCode.INVALID_ARGUMENT and \
                        req.WhichOneof("outcome") != "error":
                    log.error("step %s of %s: outcome refused: %s",
                              task.step, task.execution_id, e.details())
                    req.error.CopyFrom(_pb.events_pb2.ErrorInfo(
                        kind="invalid_result", message=f"the node refused "
                        f"the step's outcome: {e.details()}",
                        retryable=False))
                    continue
                if code == grpc.StatusCode.NOT_FOUND:
                    log.warning("complete: %s; registering again",
                                e.details())
                    if not await self._register(gen):
                        return
                    continue
                if self._forced or (self._stopping and code not in
                                    _RETRY_CODES):
                    log.error("step %s of %s: outcome not reported: %s: %s",
                              task.step, task.execution_id, code.name,
                              e.details())
                    return
                log.warning("complete step %s of %s: %s: %s; retrying in "
                            "%.1f s", task.step, task.execution_id,
                            code.name, e.details(), delay)
                delay = await self._backoff_sleep(delay)
