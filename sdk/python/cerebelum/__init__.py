"""Cerebelum's Python SDK: steps, workflows, a worker and a client.

See sdk/python/README.md.
"""

from .client import Client, Execution
from .errors import (CerebelumError, DeadlineExceeded, ExecutionFailed,
                     FailedPrecondition, InvalidArgument, NonRetryableError,
                     NotFound, Overloaded, PermissionDenied,
                     RegistrationError, StepError, Unauthenticated,
                     Unavailable)
from .steps import Step, StepContext, step
from .worker import Worker
from .workflows import (Chain, Parallel, Raw, Retry, Source, Workflow,
                        parallel, workflow, yaml_file, yaml_text)

__all__ = [
    "CerebelumError", "Chain", "Client", "DeadlineExceeded", "Execution",
    "ExecutionFailed", "FailedPrecondition", "InvalidArgument",
    "NonRetryableError", "NotFound", "Overloaded", "Parallel",
    "PermissionDenied", "Raw", "RegistrationError", "Retry", "Source", "Step",
    "StepContext", "StepError", "Unauthenticated", "Unavailable",
    "Worker", "Workflow", "parallel", "step", "workflow", "yaml_file",
    "yaml_text",
]
