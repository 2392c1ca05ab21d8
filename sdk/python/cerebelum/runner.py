"""Running one step function: outcomes, failures as ErrorInfo, threads."""

from __future__ import annotations

import asyncio
import json
import threading
import traceback
from typing import Any

from . import _pb
from .errors import StepError
from .steps import Cancelled, Suspend


def error_info(exc: BaseException) -> "_pb.events_pb2.ErrorInfo":
    """The ErrorInfo an exception raised by a step is reported as."""
    if isinstance(exc, StepError):
        details = exc.details
        return _pb.events_pb2.ErrorInfo(
            kind=exc.kind, message=exc.message,
            details_json=json.dumps(details) if details is not None else "",
            retryable=bool(exc.retryable))
    tb = "".join(traceback.format_exception(type(exc), exc,
                                            exc.__traceback__))
    return _pb.events_pb2.ErrorInfo(
        kind=type(exc).__name__, message=str(exc) or type(exc).__name__,
        details_json=json.dumps({"traceback": tb[-8000:]}),
        retryable=getattr(exc, "retryable", True) is not False)


async def call_async(fn, args, kwargs) -> tuple[str, Any]:
    try:
        return "ok", await fn(*args, **kwargs)
    except Suspend as s:
        return "suspend", s
    except Cancelled:
        return "cancelled", None
    except asyncio.CancelledError:
        raise
    except BaseException as e:  # noqa: BLE001 - reported as the failure
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        return "raise", e


def call_in_thread(fn, args, kwargs, name: str) -> asyncio.Future:
    """Runs a plain step on a daemon thread of its own: a step that never
    returns cannot keep the process alive after a forced stop."""
    loop = asyncio.get_running_loop()
    fut = loop.create_future()

    def settle(outcome):
        if not fut.done():
            fut.set_result(outcome)

    def body():
        try:
            outcome = ("ok", fn(*args, **kwargs))
        except Suspend as s:
            outcome = ("suspend", s)
        except Cancelled:
            outcome = ("cancelled", None)
        except BaseException as e:  # noqa: BLE001 - reported as the failure
            outcome = ("raise", e)
        try:
            loop.call_soon_threadsafe(settle, outcome)
        except RuntimeError:  # the loop is gone: the worker was stopped
            pass

    threading.Thread(target=body, name=name, daemon=True).start()
    return fut
