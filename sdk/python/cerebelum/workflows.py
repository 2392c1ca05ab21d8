"""Workflows defined in Python, and workflow sources (YAML/JSON files).

``validate >> [check_stock, check_fraud] >> ship`` is a chain: steps run in
order, a list is a parallel group (all members start together and join).
``@workflow`` turns a function (or class) returning a chain into the node's
blueprint (docs/workflow-format.md) — sent as JSON text through Register.

Step inputs are generated from the functions' parameters unless a step
gives ``input=`` itself: a parameter named after a step that ran earlier in
the chain gets ``steps.<name>`` (that step's result), any other parameter
without a default gets ``input.<name>`` (a field of the workflow input). A
step that only takes ``input`` (or ``**kwargs``) gets the whole workflow
input.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path
from typing import Any, Callable, Iterable

from .steps import Step, duration_text


@dataclasses.dataclass
class Retry:
    """A retry policy: the delay after failed attempt n is
    ``min(max_interval, initial_interval * backoff_coefficient**(n-1))``."""

    max_attempts: int = 3
    initial_interval: Any = "1s"
    backoff_coefficient: float = 2
    max_interval: Any = None
    jitter: bool = False

    def to_dict(self) -> dict:
        d = {"max_attempts": self.max_attempts,
             "initial_interval": duration_text(self.initial_interval,
                                               "initial_interval"),
             "backoff_coefficient": self.backoff_coefficient}
        if self.max_interval is not None:
            d["max_interval"] = duration_text(self.max_interval,
                                              "max_interval")
        if self.jitter:
            d["jitter"] = True
        return d


class Parallel:
    """A parallel group; ``[a, b]`` in a chain makes one with a name
    derived from its members, ``parallel(a, b, name="checks")`` names it."""

    def __init__(self, members: Iterable, name: str | None = None,
                 branch: list | None = None):
        self.members = list(members)
        if len(self.members) < 1:
            raise ValueError("a parallel group needs at least one step")
        for m in self.members:
            if not isinstance(m, (Step, Raw)):
                raise TypeError(f"a parallel group holds steps, not {m!r} "
                                "(groups cannot nest)")
        if name is None:
            name = "_and_".join(_name_of(m) for m in self.members)
            if len(name) > 60:
                name = "parallel_" + _name_of(self.members[0])
        self.name = name
        self.branch = branch

    def __rshift__(self, other):
        return Chain.of(self) >> other

    def __rrshift__(self, other):
        return Chain.of(other) >> self


def parallel(*members, name: str | None = None,
             branch: list | None = None) -> Parallel:
    return Parallel(members, name=name, branch=branch)


class Raw:
    """Any step of the workflow format as a dict, e.g. a sleep or an
    approval between Python steps: ``Raw({"name": "cool_down",
    "sleep": "2s"})``."""

    def __init__(self, spec: dict):
        if not isinstance(spec, dict) or "name" not in spec:
            raise ValueError("Raw() needs a step dict with a 'name'")
        self.spec = dict(spec)
        self.name = spec["name"]

    def __rshift__(self, other):
        return Chain.of(self) >> other

    def __rrshift__(self, other):
        return Chain.of(other) >> self


def _name_of(x) -> str:
    return x.name


def _element(x):
    if isinstance(x, (Step, Parallel, Raw)):
        return x
    if isinstance(x, (list, tuple)):
        return Parallel(x)
    raise TypeError(f"cannot chain {x!r}: expected a @step, a list of steps "
                    "(parallel) or a Chain")


class Chain:
    """Steps and parallel groups in order."""

    def __init__(self, elements: list):
        self.elements = elements

    @classmethod
    def of(cls, x) -> "Chain":
        if isinstance(x, Chain):
            return cls(list(x.elements))
        return cls([_element(x)])

    def __rshift__(self, other):
        right = other.elements if isinstance(other, Chain) \
            else [_element(other)]
        return Chain(self.elements + list(right))

    def __rrshift__(self, other):
        return Chain.of(other) >> self

    def steps(self) -> list[Step]:
        out = []
        for e in self.elements:
            members = e.members if isinstance(e, Parallel) else [e]
            out += [m for m in members if isinstance(m, Step)]
        return out


def _step_spec(s: Step, seen: set[str], queue: str | None,
               workflow: str) -> dict:
    q = s.queue or queue
    if not q:
        raise ValueError(f"workflow '{workflow}': step '{s.name}' has no "
                         "queue (pass queue= to @step or @workflow)")
    spec: dict[str, Any] = {"name": s.name, "task": s.task, "queue": q}
    opts = s.options
    if "input" in opts:
        spec["input"] = opts["input"]
    else:
        fields = {}
        for p in s.data_params():
            if p.name in seen:
                fields[p.name] = f"steps.{p.name}"
            elif p.default is p.empty:
                fields[p.name] = f"input.{p.name}"
        params = s.signature.parameters.values()
        whole = any(p.name == "input" or p.kind == p.VAR_KEYWORD
                    for p in params)
        if fields:
            spec["input"] = fields
        elif whole:
            spec["input"] = "input"
    if "retry" in opts:
        r = opts["retry"]
        spec["retry"] = r.to_dict() if isinstance(r, Retry) else r
    for key in ("timeout", "heartbeat_timeout"):
        if key in opts:
            spec[key] = duration_text(opts[key], key)
    for key in ("idempotency_key", "diverge", "branch"):
        if key in opts:
            spec[key] = opts[key]
    return spec


class Workflow:
    """A workflow definition built from a chain."""

    def __init__(self, name: str, chain, *, queue: str | None = None,
                 version: str | None = None, output: Any = None,
                 input_schema: dict | None = None,
                 max_iterations: int | None = None):
        self.name = name
        self._chain_src = chain
        self._chain: Chain | None = None
        self.queue = queue
        self.version = version
        self.output = output
        self.input_schema = input_schema
        self.max_iterations = max_iterations

    def __repr__(self):
        return f"<workflow {self.name}>"

    @property
    def chain(self) -> Chain:
        if self._chain is None:
            src = self._chain_src
            c = src() if callable(src) and not isinstance(
                src, (Step, Chain, Parallel, Raw)) else src
            if c is None:
                raise ValueError(f"workflow '{self.name}' returned no steps "
                                 "(return a chain such as a >> [b, c] >> d)")
            self._chain = Chain.of(c)
        return self._chain

    def steps(self) -> list[Step]:
        return self.chain.steps()

    def blueprint(self) -> dict:
        doc: dict[str, Any] = {"name": self.name}
        if self.version is not None:
            doc["version"] = str(self.version)
        if self.max_iterations is not None:
            doc["max_iterations"] = self.max_iterations
        if self.input_schema is not None:
            doc["input_schema"] = self.input_schema
        if self.output is not None:
            doc["output"] = self.output
        seen: set[str] = set()
        names: set[str] = set()
        out = []

        def claim(n):
            if n in names:
                raise ValueError(
                    f"workflow '{self.name}': step name '{n}' is used twice "
                    "(give one a new name with step.using(name=...))")
            names.add(n)

        for e in self.chain.elements:
            if isinstance(e, Parallel):
                claim(e.name)
                members = []
                for m in e.members:
                    claim(m.name)
                    members.append(dict(m.spec) if isinstance(m, Raw) else
                                   _step_spec(m, seen, self.queue, self.name))
                g: dict[str, Any] = {"name": e.name, "parallel": members}
                if e.branch:
                    g["branch"] = e.branch
                out.append(g)
                seen.update(m.name for m in e.members)
                seen.add(e.name)
            elif isinstance(e, Raw):
                claim(e.name)
                out.append(dict(e.spec))
                seen.add(e.name)
            else:
                claim(e.name)
                out.append(_step_spec(e, seen, self.queue, self.name))
                seen.add(e.name)
        doc["steps"] = out
        return doc

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.blueprint(), indent=indent)

    def source(self) -> "Source":
        return Source(f"{self.name}.json", "json", self.to_json())


def workflow(fn: Callable | type | None = None, *, name: str | None = None,
             queue: str | None = None, version: str | None = None,
             output: Any = None, input_schema: dict | None = None,
             max_iterations: int | None = None):
    """Defines a workflow: a function returning a chain, or a class with a
    ``steps`` attribute (or method) and optional ``name``, ``queue``,
    ``version``, ``output``, ``input_schema``, ``max_iterations``
    attributes. Keyword arguments of the decorator win."""

    def make(target):
        if isinstance(target, type):
            attrs = {k: getattr(target, k, None) for k in (
                "name", "queue", "version", "output", "input_schema",
                "max_iterations")}
            body = getattr(target, "steps", None)
            if body is None:
                raise ValueError(f"@workflow class {target.__name__} needs "
                                 "a 'steps' attribute")
            if callable(body) and not isinstance(
                    body, (Step, Chain, Parallel, Raw)):
                instance = target()
                chain = getattr(instance, "steps")
            else:
                chain = body
            wf_name = name or attrs["name"] or _snake(target.__name__)
        else:
            attrs = {}
            chain = target
            wf_name = name or target.__name__
        pick = (lambda k, v: v if v is not None else attrs.get(k))
        return Workflow(wf_name, chain, queue=pick("queue", queue),
                        version=pick("version", version),
                        output=pick("output", output),
                        input_schema=pick("input_schema", input_schema),
                        max_iterations=pick("max_iterations",
                                            max_iterations))

    if fn is not None:
        return make(fn)
    return make


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


@dataclasses.dataclass(frozen=True)
class Source:
    """A blueprint as a workflows/ file holds it (WorkflowSource)."""

    name: str
    format: str  # "yaml" or "json"
    text: str


def yaml_text(text: str, name: str = "inline.yaml") -> Source:
    return Source(name, "yaml", text)


def yaml_file(path: os.PathLike | str) -> Source:
    p = Path(path)
    fmt = "json" if p.suffix == ".json" else "yaml"
    return Source(p.name, fmt, p.read_text())


def to_source(x) -> Source:
    """A Workflow, Source, or path of a .yaml/.yml/.json file."""
    if isinstance(x, Source):
        return x
    if isinstance(x, Workflow):
        return x.source()
    if isinstance(x, (str, os.PathLike)):
        p = Path(x)
        if p.suffix not in (".yaml", ".yml", ".json"):
            raise ValueError(f"workflow file {str(x)!r}: expected .yaml, "
                             ".yml or .json (inline YAML: yaml_text(...))")
        if not p.is_file():
            raise FileNotFoundError(f"workflow file {str(x)!r} not found")
        return yaml_file(p)
    raise TypeError(f"not a workflow: {x!r} (a @workflow, a Source or a "
                    "path to a YAML/JSON file)")
