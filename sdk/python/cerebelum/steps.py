"""Steps: ``@step`` functions, their context and dependency injection.

A step is a plain or ``async`` function. When a task arrives its parameters
are filled by name:

* ``ctx`` (or any parameter annotated ``StepContext``) — the StepContext;
* ``input`` — the step's whole input (the JSON value the node evaluated
  from the step's ``input`` mapping);
* any other name — the field of that name in the input (a previous step's
  result arrives this way when the input mapping passes it, e.g.
  ``input: {validate: "steps.validate"}``);
* ``**kwargs`` — the input fields no other parameter took.

A parameter that is not in the input keeps its default; without a default
the attempt fails with kind ``input_mismatch`` (not retryable).
"""

from __future__ import annotations

import copy
import datetime as _dt
import functools
import inspect
import json
import re
import threading
from typing import Any, Callable

from .errors import NonRetryableError

_DURATION_PART = re.compile(r"(\d+)(ms|s|m|h|d)")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def to_ms(value, what: str = "duration") -> int:
    """Seconds (int/float), a timedelta or a duration text ("1h30m",
    "250ms", "2s") in milliseconds."""
    if isinstance(value, bool):
        raise ValueError(f"invalid {what} {value!r}")
    if isinstance(value, _dt.timedelta):
        ms = value.total_seconds() * 1000
    elif isinstance(value, (int, float)):
        ms = value * 1000
    elif isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return int(text)
        parts = _DURATION_PART.findall(text)
        if not text or "".join(n + u for n, u in parts) != text:
            raise ValueError(f"invalid {what} {value!r} (e.g. '2s', '1h30m')")
        ms = sum(int(n) * _UNIT_MS[u] for n, u in parts)
    else:
        raise ValueError(f"invalid {what} {value!r}")
    if ms < 0:
        raise ValueError(f"invalid {what} {value!r}: negative")
    return int(round(ms))


def duration_text(value, what: str = "duration") -> str:
    """A duration for a blueprint: strings pass as they are (the node
    validates them), numbers are seconds."""
    if isinstance(value, str):
        return value
    return f"{to_ms(value, what)}ms"


class Suspend(BaseException):
    """Ends the attempt with CompleteTask(suspend). A BaseException so that
    a step's ``except Exception`` does not swallow it."""

    def __init__(self, wait_key: str, *, sleep_ms: int = 0,
                 approval: bool = False, data_json: str = "",
                 timeout_ms: int = 0):
        super().__init__(wait_key)
        self.wait_key = wait_key
        self.sleep_ms = sleep_ms
        self.approval = approval
        self.data_json = data_json
        self.timeout_ms = timeout_ms


class Cancelled(BaseException):
    """Raised by ``ctx.check_cancelled()`` once the node asked to stop."""


class _Ready:
    """An awaitable that is already done (a wait this step went through)."""

    def __init__(self, value):
        self.value = value

    def __await__(self):
        if False:  # pragma: no cover - makes this a generator
            yield
        return self.value


class StepContext:
    """What a running step knows about its attempt, and what it can ask.

    ``heartbeat(details)`` records progress; the worker's heartbeat thread
    sends it (heartbeats are sent anyway, at a third of the heartbeat
    timeout, whether the step calls this or not).

    ``sleep(seconds)`` and ``wait_for_approval(data=..., timeout=...)``
    suspend the step: the attempt ends, the node records the wait, and when
    it is over the step runs again **from its start** as a new attempt, in
    which the waits it already went through return at once (the approval
    one returns the approver's data). Code before a wait must therefore be
    idempotent. In an ``async`` step ``await`` them; in a plain step call
    them (they return the value directly).
    """

    def __init__(self, *, execution_id: str = "", workflow: str = "",
                 step: str = "", attempt: int = 1, task_id: str = "",
                 task_type: str = "", queue: str = "",
                 idempotency_key: str = "", worker_id: str = "",
                 input: Any = None, resume: dict | None = None,
                 heartbeat_timeout: float = 0.0,
                 is_async: bool = True, on_heartbeat: Callable | None = None):
        self.execution_id = execution_id
        self.workflow = workflow
        self.step = step
        self.attempt = attempt
        self.task_id = task_id
        self.task_type = task_type
        self.queue = queue
        self.idempotency_key = idempotency_key
        self.worker_id = worker_id
        self.input = input
        self.resume = dict(resume or {})
        self.heartbeat_timeout = heartbeat_timeout
        self._is_async = is_async
        self._on_heartbeat = on_heartbeat
        self._waits = 0
        self._cancelled = threading.Event()
        self.details: Any = None
        self._details_version = 0

    # -- progress and cancellation -------------------------------------
    def heartbeat(self, details: Any = None) -> None:
        """Records progress (any JSON value); sent with the next heartbeat,
        which this call brings forward. Never blocks."""
        if details is not None:
            json.dumps(details)  # fail here, in the step, if not JSON
            self.details = details
            self._details_version += 1
        if self._on_heartbeat is not None:
            self._on_heartbeat()

    @property
    def cancelled(self) -> bool:
        """True once the node asked to stop (execution cancelled, lease
        lost). Async steps are cancelled for you; plain steps poll this or
        call ``check_cancelled()``."""
        return self._cancelled.is_set()

    def check_cancelled(self) -> None:
        if self._cancelled.is_set():
            raise Cancelled("the attempt was cancelled")

    def _cancel(self) -> None:
        self._cancelled.set()

    # -- durable waits ---------------------------------------------------
    def _next_key(self, kind: str) -> str:
        self._waits += 1
        return f"{kind}#{self._waits}"

    def _done(self, value):
        return _Ready(value) if self._is_async else value

    def sleep(self, seconds):
        """A durable sleep of ``seconds`` (number, timedelta or "5m")."""
        key = self._next_key("sleep")
        if key in self.resume:
            return self._done(None)
        ms = to_ms(seconds, "sleep duration")
        if ms <= 0:
            raise ValueError(f"sleep duration must be > 0, got {seconds!r}")
        raise Suspend(key, sleep_ms=ms)

    def wait_for_approval(self, data: Any = None, timeout=None):
        """Waits for an operator's approval; returns the data they approved
        with. ``data`` is shown to the approver; ``timeout`` (seconds,
        timedelta or "24h"; None = forever). A rejection or timeout fails
        the step on the node (kinds approval_rejected / approval_timeout)."""
        key = self._next_key("approval")
        if key in self.resume:
            return self._done(self.resume[key])
        data_json = json.dumps(data) if data is not None else ""
        timeout_ms = to_ms(timeout, "approval timeout") if timeout else 0
        raise Suspend(key, approval=True, data_json=data_json,
                      timeout_ms=timeout_ms)


_CTX_NAMES = ("ctx",)
_STEP_OPTIONS = ("input", "retry", "timeout", "heartbeat_timeout",
                 "idempotency_key", "diverge", "branch")


class Step:
    """A ``@step`` function: callable as the plain function, and a node of
    workflow chains (``a >> [b, c] >> d``)."""

    def __init__(self, fn: Callable, *, name: str | None = None,
                 task: str | None = None, queue: str | None = None,
                 **options):
        if not callable(fn):
            raise TypeError("@step needs a function")
        unknown = set(options) - set(_STEP_OPTIONS)
        if unknown:
            raise TypeError(f"@step: unknown option(s) {sorted(unknown)}; "
                            f"known: {', '.join(_STEP_OPTIONS)}")
        self.fn = fn
        self.name = name or fn.__name__
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.name) \
                or self.name == "end":
            raise ValueError(f"invalid step name {self.name!r}: use an "
                             "identifier other than 'end' (name=...)")
        self.task = task or self.name
        self.queue = queue
        self.options = {k: v for k, v in options.items() if v is not None}
        self.is_async = inspect.iscoroutinefunction(fn)
        self.signature = inspect.signature(fn)
        functools.update_wrapper(self, fn)

    def __repr__(self):
        return f"<step {self.name} task={self.task!r}>"

    def __call__(self, *args, **kwargs):
        return self.fn(*args, **kwargs)

    def using(self, **changes) -> "Step":
        """A copy with other options, e.g. the same function twice in one
        workflow: ``charge.using(name="charge_again")``."""
        new = copy.copy(self)
        new.options = dict(self.options)
        for k, v in changes.items():
            if k in ("name", "task", "queue"):
                setattr(new, k, v)
            elif k in _STEP_OPTIONS:
                new.options[k] = v
            else:
                raise TypeError(f"using(): unknown option {k!r}")
        return new

    # -- chains ------------------------------------------------------------
    def __rshift__(self, other):
        from .workflows import Chain
        return Chain.of(self) >> other

    def __rrshift__(self, other):
        from .workflows import Chain
        return Chain.of(other) >> self

    # -- dependency injection ---------------------------------------------
    def data_params(self) -> list[inspect.Parameter]:
        """Parameters filled from input fields (not ctx, input, *args,
        **kwargs)."""
        return [p for p in self.signature.parameters.values()
                if not _is_ctx(p) and p.name != "input"
                and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]

    def bind(self, value: Any, ctx: StepContext) -> tuple[list, dict]:
        """The arguments for one attempt, from its input ``value``."""
        fields = value if isinstance(value, dict) else {}
        args: list = []
        kwargs: dict = {}
        used: set[str] = set()
        missing: list[str] = []
        rest = None
        for p in self.signature.parameters.values():
            if p.kind == p.VAR_POSITIONAL:
                continue
            if p.kind == p.VAR_KEYWORD:
                rest = p
                continue
            if _is_ctx(p):
                v = ctx
            elif p.name == "input":
                v = value
            elif p.name in fields:
                v = fields[p.name]
                used.add(p.name)
            elif p.default is not p.empty:
                continue
            else:
                missing.append(p.name)
                continue
            if p.kind == p.POSITIONAL_ONLY:
                args.append(v)
            else:
                kwargs[p.name] = v
        if missing:
            have = ", ".join(sorted(fields)) if fields else \
                f"the input is {json.dumps(value)}"
            raise NonRetryableError(
                f"step '{self.name}': parameter(s) {', '.join(missing)} not "
                f"in its input (fields: {have})", kind="input_mismatch")
        if rest is not None:
            for k, v in fields.items():
                if k not in used and k not in kwargs:
                    kwargs[k] = v
        return args, kwargs


def _is_ctx(p: inspect.Parameter) -> bool:
    if p.name in _CTX_NAMES:
        return True
    ann = p.annotation
    return ann is StepContext or ann == "StepContext"


def step(fn: Callable | str | None = None, *, name: str | None = None,
         task: str | None = None, queue: str | None = None, **options):
    """Makes a function a step.

    ``@step``, ``@step("payments.charge")`` (the task type the node's
    ``task:`` names), or ``@step(name=..., task=..., queue=..., input=...,
    retry=Retry(...), timeout="30s", heartbeat_timeout="10s",
    idempotency_key="charge-${input.id}", diverge=[...], branch=[...])``.
    The options are used when the step is part of a ``@workflow``.
    """
    if callable(fn):
        return Step(fn, name=name, task=task, queue=queue, **options)
    if isinstance(fn, str):
        task = fn

    def wrap(f):
        return Step(f, name=name, task=task, queue=queue, **options)
    return wrap
