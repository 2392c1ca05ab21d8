"""The chaos checker on planted defects: a clean run passes, and every kind
of defect the checker looks for is found (CTest `chaos_checker`)."""

import copy
import unittest

import checker

EID = "x-1"
T0 = 100.0


def ev(seq, type_, t, **fields):
    return {"seq": seq, "type": type_, "recorded_at_ms": int(t * 1000),
            **fields}


def clean():
    """One chaos_pipeline execution (n = 1 -> result n = 8) whose two task
    steps ran once each, on worker py-1."""
    history = [
        ev(0, "execution_started", T0, workflow="chaos_pipeline"),
        ev(1, "step_scheduled", T0, step="left", kind="task", attempt=1,
           map_index=-1),
        ev(2, "step_completed", T0 + 1, step="left", attempt=1,
           map_index=-1, result={"n": 4}),
        ev(3, "step_scheduled", T0 + 1, step="finish", kind="task",
           attempt=1, map_index=-1),
        ev(4, "step_completed", T0 + 2, step="finish", attempt=1,
           map_index=-1, result={"n": 8}),
        ev(5, "execution_completed", T0 + 2, result={"n": 8}),
    ]
    run = {"started_at": T0 - 10, "faults": [],
           "starts": {EID: {"workflow": "chaos_pipeline",
                            "input": {"n": 1, "flaky": False,
                                      "sleep_ms": 0},
                            "acked_at": T0, "tries": 1}}}
    executions = {EID: {"execution_id": EID, "status": "completed",
                        "phase": "end", "result": {"n": 8},
                        "history_length": len(history)}}
    effects = []
    for step, start in (("left", T0 + 0.2), ("finish", T0 + 1.2)):
        effects += effect_run(step, 1, start)
    return {"run": run, "executions": executions,
            "histories": {EID: history}, "rows": {}, "effects": effects}


def effect_run(step, attempt, start, done=True, worker="py-1"):
    base = {"w": worker, "e": EID, "s": step, "a": attempt, "i": -1}
    out = [dict(base, ev="start", t=start)]
    if done:
        out.append(dict(base, ev="done", t=start + 0.3))
    return out


def check(d):
    return checker.check_data(d["run"], d["executions"], d["histories"],
                              d["rows"], d["effects"])


def renumber(d):
    for i, e in enumerate(d["histories"][EID]):
        e["seq"] = i
    d["executions"][EID]["history_length"] = len(d["histories"][EID])


class CheckerTest(unittest.TestCase):
    def assertFinds(self, d, kind):
        rep = check(d)
        self.assertIn(kind, rep.kinds(), rep.findings)

    def test_clean_run_has_no_findings(self):
        rep = check(clean())
        self.assertEqual(rep.findings, [])
        self.assertEqual(rep.figures["task runs (side-effect log)"], 2)

    def test_a_worker_kill_rerun_is_charged_to_the_fault(self):
        d = clean()
        d["run"]["faults"] = [{"kind": "worker-kill", "worker": "py-2",
                               "start": T0 + 0.5, "end": T0 + 0.5}]
        d["effects"] += effect_run("left", 1, T0 + 0.1, done=False,
                                   worker="py-2")
        rep = check(d)
        self.assertEqual(rep.findings, [])
        self.assertEqual(rep.figures[
            "task re-runs (runs whose outcome was lost or charged to a "
            "fault)"], 1)
        self.assertEqual(rep.figures["recovery per fault"][0]["cut_runs"], 1)

    def test_missing_execution(self):
        d = clean()
        del d["executions"][EID]
        del d["histories"][EID]
        self.assertFinds(d, "missing")

    def test_not_terminal(self):
        d = clean()
        d["histories"][EID].pop()
        renumber(d)
        d["executions"][EID].update(status="running", phase="finish",
                                    result=None)
        self.assertFinds(d, "not_terminal")

    def test_wrong_result(self):
        d = clean()
        d["histories"][EID][-1]["result"] = {"n": 9}
        d["executions"][EID]["result"] = {"n": 9}
        self.assertFinds(d, "wrong_result")

    def test_wrong_status(self):
        d = clean()
        d["run"]["starts"][EID]["workflow"] = "chaos_approval"
        d["run"]["starts"][EID]["input"] = {"amount": 1}
        d["run"]["starts"]["x-4"] = d["run"]["starts"].pop(EID)  # rejected
        self.assertFalse(checker.approves("x-4"))
        d["executions"]["x-4"] = d["executions"].pop(EID)
        d["histories"]["x-4"] = d["histories"].pop(EID)
        self.assertFinds(d, "wrong_result")

    def test_gap_in_the_history(self):
        d = clean()
        del d["histories"][EID][3]
        d["executions"][EID]["history_length"] = 5
        self.assertFinds(d, "seq_gap")

    def test_event_after_the_terminal_one(self):
        d = clean()
        d["histories"][EID].append(ev(6, "timer_fired", T0 + 3,
                                      timer_id="t"))
        renumber(d)
        self.assertFinds(d, "after_terminal")

    def test_result_recorded_twice(self):
        d = clean()
        h = d["histories"][EID]
        h.insert(5, copy.deepcopy(h[4]))
        renumber(d)
        self.assertFinds(d, "double_result")

    def test_step_completed_twice_in_two_attempts(self):
        d = clean()
        h = d["histories"][EID]
        again = copy.deepcopy(h[2])
        again["attempt"] = 2
        h.insert(3, again)
        renumber(d)
        d["effects"] += effect_run("left", 2, T0 + 0.6)
        self.assertFinds(d, "double_result")

    def test_index_disagrees_with_the_history(self):
        d = clean()
        d["executions"][EID]["phase"] = "finish"
        self.assertFinds(d, "replay_mismatch")

    def test_failed_in_a_parallel_group_the_phase_is_the_group(self):
        d = clean()
        h = d["histories"][EID]
        del h[3:]
        h.append(ev(3, "step_failed", T0 + 1, step="left", attempt=2,
                    map_index=-1, error={"kind": "crashed"}))
        h.append(ev(4, "execution_failed", T0 + 1,
                    error={"kind": "crashed"}))
        renumber(d)
        d["executions"][EID].update(status="failed", phase="fan",
                                    workflow="chaos_pipeline",
                                    error={"kind": "crashed"}, result=None)
        rep = check(d)
        self.assertNotIn("replay_mismatch", rep.kinds(), rep.findings)
        self.assertIn("wrong_result", rep.kinds())
        d["executions"][EID]["phase"] = "left"
        self.assertFinds(d, "replay_mismatch")

    def test_index_length_disagrees_with_the_history(self):
        d = clean()
        d["executions"][EID]["history_length"] = 7
        self.assertFinds(d, "replay_mismatch")

    def test_timer_row_left_for_a_terminal_execution(self):
        d = clean()
        d["rows"] = {EID: {"timers": 1, "tasks": 0}}
        self.assertFinds(d, "leftover_row")

    def test_task_row_left_for_a_terminal_execution(self):
        d = clean()
        d["rows"] = {EID: {"timers": 0, "tasks": 1}}
        self.assertFinds(d, "leftover_row")

    def test_result_without_a_run_of_the_step(self):
        d = clean()
        d["effects"] = [e for e in d["effects"] if e["s"] != "finish"]
        self.assertFinds(d, "phantom_result")

    def test_rerun_without_a_fault(self):
        d = clean()
        d["effects"] += effect_run("left", 1, T0 + 0.5, worker="py-2")
        self.assertFinds(d, "unexplained_rerun")

    def test_more_reruns_than_work_in_flight(self):
        d = clean()
        # Nothing ran during the fault, yet two runs just after it are
        # charged to it.
        d["run"]["faults"] = [{"kind": "node-kill", "start": T0 + 10,
                               "end": T0 + 11}]
        d["effects"] += effect_run("left", 1, T0 + 12)
        d["effects"] += effect_run("left", 1, T0 + 13)
        rep = check(d)
        self.assertIn("rerun_bound", rep.kinds(), rep.findings)
        self.assertNotIn("unexplained_rerun", rep.kinds())

    def test_refused_start(self):
        d = clean()
        d["run"]["starts"]["x-2"] = {"workflow": "chaos_map",
                                     "input": {"xs": [1]}, "tries": 1,
                                     "refused": "404 unknown_workflow"}
        self.assertFinds(d, "refused_start")


if __name__ == "__main__":
    unittest.main()
