"""The chaos suite's checker (tests/chaos/README.md). After a run, with the
faults stopped and the executions quiescent, it proves from the histories
(HTTP API), the store's timer and task rows and the workers' side-effect
logs that:

- every acknowledged execution exists and is terminal with the result its
  input calls for (`missing`, `not_terminal`, `wrong_result`);
- every history is gap-free from seq 0 and nothing follows its terminal
  event (`seq_gap`, `after_terminal`);
- each step result is recorded once: one completion per step (map child),
  one outcome per attempt (`double_result`);
- the history replays to what the index shows: status, phase, result,
  error, history length (`replay_mismatch`);
- no timer or task row is left for a terminal execution (`leftover_row`);
- every recorded task result was produced by a run of the step's code
  (`phantom_result`), every re-run of step code overlaps a fault
  (`unexplained_rerun`), and the re-runs charged to each fault are at most
  the runs in flight at it (`rerun_bound`).

`check` gathers the data from a live node; `check_data` is the pure part
(tests/chaos/test_checker.py plants defects in it).
"""

from __future__ import annotations

import json
import sqlite3
import zlib
from collections import Counter, defaultdict
from pathlib import Path

TERMINAL_EVENTS = {"execution_completed": "completed",
                   "execution_failed": "failed",
                   "execution_cancelled": "cancelled"}
OUTCOMES = ("step_completed", "step_failed", "step_suspended")
# Failures the engine reports for lost work: not the step's own outcome,
# so the run behind them is a re-run charged to a fault.
ENGINE_KINDS = {"lease_expired", "worker_lost", "heartbeat_timeout",
                "timeout"}
# A run's result can be lost when it ended shortly before a fault (its
# outcome not yet committed) or its lease ran out just after one.
# Members of parallel groups: the index's phase names the group.
GROUPS = {"chaos_pipeline": {"left": "fan", "right": "fan"}}
SLACK_BEFORE_S = 2.0
SLACK_AFTER_S = 5.0


def approves(execution_id: str) -> bool:
    """The scripted approver's rule: rejects one execution in four."""
    return zlib.crc32(execution_id.encode()) % 4 != 0


def expected(eid: str, workflow: str, inp: dict):
    """(status, result or error kind) the input calls for."""
    if workflow == "chaos_pipeline":
        return "completed", {"n": 4 * (inp["n"] + 1)}
    if workflow == "chaos_map":
        return "completed", {"sum": sum(x * x for x in inp["xs"])}
    if workflow == "chaos_approval":
        if approves(eid):
            return "completed", {"price": 3 * inp["amount"], "booked": True}
        return "failed", "chaos_rejected"
    raise ValueError(f"unknown workflow {workflow}")


class Report:
    def __init__(self):
        self.figures: dict = {}
        self.findings: list[tuple[str, str]] = []

    def find(self, kind: str, message: str) -> None:
        self.findings.append((kind, message))

    def kinds(self) -> set:
        return {k for k, _ in self.findings}

    def print(self) -> None:
        print("== chaos figures ==")
        for k, v in self.figures.items():
            print(f"  {k}: {v}")
        counts = Counter(k for k, _ in self.findings)
        print(f"== findings: {len(self.findings)} "
              f"{dict(counts) if counts else ''}==")
        for kind in counts:
            shown = [m for k, m in self.findings if k == kind][:10]
            for m in shown:
                print(f"  {kind}: {m}")
            if counts[kind] > len(shown):
                print(f"  {kind}: ... and {counts[kind] - len(shown)} more")


class SqliteStore:
    def __init__(self, data_dir: Path):
        self.path = Path(data_dir) / "cerebelum-events.db"

    def rows(self) -> dict:
        db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True,
                             timeout=30)
        try:
            return _count_rows(lambda sql: db.execute(sql).fetchall())
        finally:
            db.close()


class PgStore:
    def __init__(self, psql):
        self.psql = psql

    def rows(self) -> dict:
        def query(sql):
            return [line.split("|") for line in
                    self.psql(sql).splitlines() if line]
        # The node's tables live in the schema `cerebelum`.
        return _count_rows(query, "cerebelum.")


def _count_rows(query, schema: str = "") -> dict:
    rows: dict = defaultdict(lambda: {"timers": 0, "tasks": 0})
    for table in ("timers", "tasks"):
        for eid, n in query(f"SELECT execution_id, count(*) FROM "
                            f"{schema}{table} "
                            "GROUP BY execution_id"):
            rows[eid][table] = int(n)
    return dict(rows)


def read_effects(files) -> list[dict]:
    out = []
    for f in files:
        with open(f) as fh:
            for line in fh:
                line = line.strip()
                if line:
                    try:
                        out.append(json.loads(line))
                    except ValueError:
                        pass  # a line cut by kill -9 cannot happen with
                        # one write(), but never let it stop the check
    return out


def check(run: dict, http, store, effect_files) -> Report:
    """Reads every execution of the run and its history from the node, the
    timer and task rows from the store, then `check_data`."""
    executions, histories = {}, {}
    for eid in run["starts"]:
        status, body = http.call("GET", f"/v1/executions/{eid}", timeout=20)
        if status == 404:
            continue
        if status != 200:
            raise OSError(f"describe {eid} answered {status}: {body}")
        executions[eid] = body
        status, body = http.call("GET", f"/v1/executions/{eid}/history",
                                 timeout=20)
        if status != 200:
            raise OSError(f"history of {eid} answered {status}: {body}")
        histories[eid] = body["events"]
    return check_data(run, executions, histories, store.rows(),
                      read_effects(effect_files))


def runs_of(effects: list[dict]) -> dict:
    """Runs of step code by (execution, step, map index, attempt): each a
    start line and its done line from the same worker (None: the run was
    cut short, e.g. its worker killed)."""
    runs = defaultdict(list)
    open_runs = {}
    for e in sorted(effects, key=lambda e: e["t"]):
        key = (e["e"], e["s"], e["i"], e["a"])
        if e["ev"] == "start":
            run = {"key": key, "w": e["w"], "start": e["t"], "done": None}
            runs[key].append(run)
            open_runs[(e["w"], key)] = run
        else:
            run = open_runs.pop((e["w"], key), None)
            if run:
                run["done"] = e["t"]
    return runs


def check_data(run: dict, executions: dict, histories: dict, rows: dict,
               effects: list[dict]) -> Report:
    rep = Report()
    starts = run["starts"]
    faults = run.get("faults", [])
    fig = rep.figures
    acked = [e for e, r in starts.items() if "acked_at" in r]
    fig["executions started (acknowledged)"] = len(acked)
    fig["starts never acknowledged"] = len(starts) - len(acked)
    fig["start retries"] = sum(max(0, r.get("tries", 1) - 1)
                               for r in starts.values())
    fig["starts answered 429 (retried)"] = sum(r.get("overloaded", 0)
                                              for r in starts.values())
    fig["executions by status"] = dict(Counter(
        executions[e]["status"] for e in executions))
    fig["executions by workflow"] = dict(Counter(
        starts[e]["workflow"] for e in executions))
    fig["faults"] = dict(Counter(f["kind"] for f in faults))
    fig["fault errors"] = sum(1 for f in faults if "error" in f)

    for eid, r in starts.items():
        if "refused" in r:
            rep.find("refused_start", f"{eid}: {r['refused']}")
    # -- existence, terminal state, result ------------------------------------
    for eid in acked:
        ex = executions.get(eid)
        if ex is None:
            rep.find("missing", f"{eid} was acknowledged but the node does "
                     "not know it")
            continue
        want_status, want = expected(eid, starts[eid]["workflow"],
                                     starts[eid]["input"])
        if ex["status"] not in TERMINAL_EVENTS.values():
            rep.find("not_terminal", f"{eid} is {ex['status']} "
                     f"(phase {ex.get('phase')}, awaiting "
                     f"'{ex.get('awaiting_step')}')")
            continue
        if ex["status"] != want_status:
            err = ex.get("error") or {}
            rep.find("wrong_result", f"{eid} is {ex['status']}, expected "
                     f"{want_status} ({err.get('kind')}: "
                     f"{str(err.get('message'))[:160]})")
        elif want_status == "completed" and ex.get("result") != want:
            rep.find("wrong_result", f"{eid} result {ex.get('result')}, "
                     f"expected {want}")
        elif want_status == "failed" and \
                (ex.get("error") or {}).get("kind") != want:
            rep.find("wrong_result", f"{eid} failed with "
                     f"{(ex.get('error') or {}).get('kind')}, expected {want}")

    # -- histories ------------------------------------------------------------
    outcomes = {}        # (eid, step, index, attempt) -> [event]
    task_attempts = set()
    engine_failures = Counter()
    for eid, events in histories.items():
        seqs = [ev["seq"] for ev in events]
        if seqs != list(range(len(events))):
            gap = next((i for i, s in enumerate(seqs) if s != i), len(seqs))
            rep.find("seq_gap", f"{eid}: seq {seqs[gap] if gap < len(seqs) else '?'}"
                     f" at position {gap} (history of {len(events)})")
        if not events or events[0]["type"] != "execution_started":
            rep.find("seq_gap", f"{eid}: history does not begin with "
                     "execution_started")
        terminal_at = [i for i, ev in enumerate(events)
                       if ev["type"] in TERMINAL_EVENTS]
        if terminal_at and terminal_at[0] != len(events) - 1:
            after = events[terminal_at[0] + 1]
            rep.find("after_terminal", f"{eid}: {after['type']} (seq "
                     f"{after['seq']}) after {events[terminal_at[0]]['type']}")
        completions = Counter()
        loops = any(ev["type"] == "jumped_back" for ev in events)
        for ev in events:
            t = ev["type"]
            if t == "step_scheduled" and ev.get("kind") == "task":
                task_attempts.add((eid, ev["step"], ev["map_index"],
                                   ev["attempt"]))
            if t in OUTCOMES:
                key = (eid, ev["step"], ev["map_index"], ev["attempt"])
                outcomes.setdefault(key, []).append(ev)
                if t == "step_completed":
                    completions[(ev["step"], ev["map_index"])] += 1
                if t == "step_failed" and \
                        ev["error"]["kind"] in ENGINE_KINDS:
                    engine_failures[ev["error"]["kind"]] += 1
        for key, evs in outcomes.items():
            if key[0] == eid and len(evs) > 1:
                rep.find("double_result", f"{eid}: step {key[1]} "
                         f"(map index {key[2]}) attempt {key[3]} has "
                         f"{len(evs)} outcomes: "
                         f"{[e['type'] for e in evs]}")
        if not loops:
            for (step, idx), n in completions.items():
                if n > 1:
                    rep.find("double_result", f"{eid}: step {step} (map "
                             f"index {idx}) completed {n} times")
        replay(rep, eid, events, executions.get(eid))
        ex = executions.get(eid)
        left = rows.get(eid)
        if ex and ex["status"] in TERMINAL_EVENTS.values() and left and \
                (left["timers"] or left["tasks"]):
            rep.find("leftover_row", f"{eid} is {ex['status']} but the "
                     f"store holds {left['timers']} timer(s) and "
                     f"{left['tasks']} task(s) of it")
    fig["engine-reported lost attempts"] = dict(engine_failures)

    # -- side effects: runs of step code against recorded attempts -----------
    runs = runs_of(effects)
    fig["task runs (side-effect log)"] = sum(len(v) for v in runs.values())
    reruns = []
    for key, rs in runs.items():
        evs = outcomes.get(key, [])
        own = [e for e in evs if e["type"] != "step_failed"
               or e["error"]["kind"] not in ENGINE_KINDS]
        explained = 1 if own else 0
        # The run that produced the recorded outcome: the last one done
        # before it was recorded; the others are re-runs.
        ordered = sorted(rs, key=lambda r: r["start"])
        if explained:
            at = own[0]["recorded_at_ms"] / 1000.0
            done_before = [r for r in ordered
                           if r["done"] is not None and r["done"] <= at + 1]
            keep = done_before[-1] if done_before else ordered[-1]
            reruns += [r for r in ordered if r is not keep]
        else:
            reruns += ordered
    for key, evs in outcomes.items():
        if key in task_attempts and key not in runs and any(
                e["type"] == "step_completed" for e in evs):
            rep.find("phantom_result", f"{key[0]}: step {key[1]} (map "
                     f"index {key[2]}) attempt {key[3]} completed without "
                     "a run of its code in any side-effect log")
    fig["task re-runs (runs whose outcome was lost or charged to a fault)"] \
        = len(reruns)

    def overlaps(r, f):
        end = r["done"] if r["done"] is not None else float("inf")
        return r["start"] <= f["end"] + SLACK_AFTER_S and \
            end >= f["start"] - SLACK_BEFORE_S

    charged = Counter()
    for r in reruns:
        f = next((i for i, f in enumerate(faults) if overlaps(r, f)), None)
        if f is None:
            e, s, i, a = r["key"]
            rep.find("unexplained_rerun", f"{e}: step {s} (map index {i}) "
                     f"attempt {a} on {r['w']} at {r['start']:.3f} ran "
                     "again with no fault near it")
        else:
            charged[f] += 1
    all_runs = [r for rs in runs.values() for r in rs]
    per_fault = []
    for i, f in enumerate(faults):
        # In flight: runs open when the fault began or begun while it
        # lasted (a stopped node's workers go on with what they hold).
        inflight = sum(1 for r in all_runs
                       if r["start"] <= f["end"]
                       and (r["done"] is None
                            or r["done"] >= f["start"] - SLACK_BEFORE_S))
        if charged[i] > inflight:
            rep.find("rerun_bound", f"fault {i} ({f['kind']} at "
                     f"{f['start']:.3f}): {charged[i]} re-runs but only "
                     f"{inflight} runs in flight")
        per_fault.append((f, inflight, charged[i]))

    # -- recovery after each fault --------------------------------------------
    times = sorted(ev["recorded_at_ms"] / 1000.0
                   for evs in histories.values() for ev in evs)
    recov = []
    last_kill: dict = {}  # worker -> time of its previous kill
    for f, inflight, n in per_fault:
        nxt = next((t for t in times if t >= f["end"]), None)
        line = {"kind": f["kind"], "detail": f.get("detail", ""),
                "at_s": round(f["start"] - run.get("started_at", 0), 1),
                "outage_s": round(f["end"] - f["start"], 1),
                "progress_after_s": None if nxt is None
                else round(nxt - f["start"], 2),
                "in_flight": inflight, "re_runs": n}
        if f["kind"] == "worker-kill":
            w = f.get("worker")
            cut = [r for r in all_runs if r["w"] == w
                   and last_kill.get(w, 0) < r["start"] <= f["start"]
                   and r["done"] is None]
            last_kill[w] = f["start"]
            waits = []
            for r in cut:
                unit = r["key"][:3]
                later = [x["start"] for k, rs in runs.items()
                         if k[:3] == unit for x in rs
                         if x["start"] > f["start"]]
                if later:
                    waits.append(min(later) - f["start"])
            line["cut_runs"] = len(cut)
            line["cut_work_rerun_after_s"] = round(max(waits), 2) \
                if waits else None
        recov.append(line)
    fig["recovery per fault"] = recov
    prog = [x["progress_after_s"] for x in recov
            if x["progress_after_s"] is not None]
    if prog:
        fig["progress after a fault (s): max / mean"] = \
            f"{max(prog):.2f} / {sum(prog) / len(prog):.2f}"
    fig["findings"] = len(rep.findings)
    return rep


def replay(rep: Report, eid: str, events: list, ex: dict | None) -> None:
    """Folds the history to status, result and error, and compares with
    the execution's index entry."""
    if ex is None:
        return
    status, result, error = "running", None, None
    approvals = 0
    for ev in events:
        t = ev["type"]
        if t in TERMINAL_EVENTS:
            status = TERMINAL_EVENTS[t]
            if t == "execution_completed":
                result = ev.get("result")
            if t == "execution_failed":
                error = (ev.get("error") or {}).get("kind")
        elif t == "approval_requested":
            approvals += 1
        elif t in ("approval_granted", "approval_rejected",
                   "approval_timed_out"):
            approvals -= 1
    problems = []
    if ex.get("history_length") != len(events):
        problems.append(f"history_length {ex.get('history_length')} but "
                        f"{len(events)} events")
    if status in TERMINAL_EVENTS.values():
        if ex["status"] != status:
            problems.append(f"index says {ex['status']}, history {status}")
        # The phase is the current step: `end` once completed, the step
        # that failed (or was current when cancelled) otherwise.
        want_phase = "end" if status == "completed" else next(
            (ev["step"] for ev in reversed(events) if ev.get("step")),
            ex.get("phase"))
        want_phase = GROUPS.get(ex.get("workflow"), {}).get(want_phase,
                                                            want_phase)
        if ex.get("phase") != want_phase:
            problems.append(f"phase {ex.get('phase')}, history "
                            f"{want_phase}")
        if status == "completed" and ex.get("result") != result:
            problems.append(f"index result {ex.get('result')}, history "
                            f"{result}")
        if status == "failed" and (ex.get("error") or {}).get("kind") \
                != error:
            problems.append(f"index error {(ex.get('error') or {}).get('kind')}"
                            f", history {error}")
    else:
        if ex["status"] in TERMINAL_EVENTS.values():
            problems.append(f"index says {ex['status']} but the history "
                            "has no terminal event")
        elif approvals > 0 and ex["status"] != "awaiting_approval":
            problems.append(f"index says {ex['status']} with "
                            f"{approvals} approval(s) pending")
    for p in problems:
        rep.find("replay_mismatch", f"{eid}: {p}")
