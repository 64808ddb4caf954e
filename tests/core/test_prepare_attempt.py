"""Preparing an attempt: the engine (`prepare_attempt`) and a queue worker (`claimed_attempt`,
from the run as stored) prepare the same attempt."""
from __future__ import annotations

import copy

from active_runs import started
from plans import job

from baseshift.core.attempts import claimed_attempt, prepare_attempt
from baseshift.core.expr import Attr, ListExpr, Literal, Name
from baseshift.core.plan import FanOut, Plan
from baseshift.core.records import RunSnapshot
from baseshift.core.states import JobState

FAN = Plan("p", "1.0.0", jobs=(
    job("f", args={"tag": Name("x")}, fanout=FanOut("x", ListExpr((Literal(10), Literal(20))))),
))


def test_prepare_attempt_is_the_attempt_the_job_runs_now() -> None:
    run, fx = started(FAN)
    assert run.begin_attempt("f[1]", fx)
    launch = prepare_attempt(run, "f[1]")
    assert (launch.run, launch.key, launch.number) == (run, "f[1]", 1)
    assert launch.spec is FAN.job("f")
    assert launch.scope["x"] == 20  # the fan-out item
    assert launch.config == run.jobs["f[1]"].inputs


def test_a_worker_prepares_the_same_attempt_from_the_stored_run() -> None:
    run, fx = started(FAN)
    assert run.begin_attempt("f[0]", fx)
    here = prepare_attempt(run, "f[0]")
    stored = RunSnapshot(copy.deepcopy(run.record), copy.deepcopy(run.jobs))
    there = claimed_attempt(FAN, stored, "f[0]", 1)
    assert there is not None
    assert (there.key, there.number, there.spec, there.config) == (
        here.key, here.number, here.spec, here.config)
    assert there.scope["x"] == here.scope["x"] == 10
    assert there.scope["run"] == here.scope["run"]


def test_a_claimed_attempt_that_no_longer_runs_is_none() -> None:
    run, fx = started(Plan("p", "1.0.0", jobs=(job("a"), job("b"))))
    assert run.begin_attempt("a", fx)
    stored = RunSnapshot(run.record, run.jobs)
    assert claimed_attempt(run.plan, stored, "a", 2) is None  # retried since
    assert claimed_attempt(run.plan, stored, "b", 1) is None  # not running
    assert claimed_attempt(run.plan, stored, "nope", 1) is None
    run.jobs["a"].state = JobState.CANCELLED
    assert claimed_attempt(run.plan, stored, "a", 1) is None


def test_the_scope_reads_the_outputs_of_finished_jobs() -> None:
    plan = Plan("p", "1.0.0", jobs=(job("a"), job("b", needs=("a",),
                                                  args={"got": Attr(Name("a"), "output")})))
    run, fx = started(plan)
    assert run.begin_attempt("a", fx)
    run.attempt_succeeded("a", 1, {"n": 1}, "", fx)
    run.drain(fx)
    assert run.begin_attempt("b", fx)
    launch = prepare_attempt(run, "b")
    assert launch.scope["a"]["output"] == {"n": 1}
    assert launch.config["got"] == {"n": 1}
