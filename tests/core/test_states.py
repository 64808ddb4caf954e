"""State machines: legal moves pass, illegal ones are refused with a clear message."""
from __future__ import annotations

import pytest

from baseshift.core.errors import IllegalTransition
from baseshift.core.states import JOB_TRANSITIONS, JobState, RunState, transition


def test_the_run_lifecycle() -> None:
    state = transition(RunState.INITIALIZED, RunState.RUNNING)
    assert transition(state, RunState.COMPLETED) is RunState.COMPLETED


def test_a_finished_run_reopens_only_for_retry_or_rerun() -> None:
    for old in (RunState.COMPLETED, RunState.FAILED, RunState.CANCELLED):
        assert transition(old, RunState.RUNNING) is RunState.RUNNING


@pytest.mark.parametrize(("old", "new"), [
    (RunState.COMPLETED, RunState.FAILED), (RunState.INITIALIZED, RunState.COMPLETED),
    (RunState.CANCELLED, RunState.COMPLETED)])
def test_illegal_run_moves_are_refused(old: RunState, new: RunState) -> None:
    with pytest.raises(IllegalTransition, match=f"illegal run transition {old} -> {new}"):
        transition(old, new)


@pytest.mark.parametrize(("old", "new"), [
    (JobState.SUCCEEDED, JobState.RUNNING), (JobState.PENDING, JobState.SUCCEEDED),
    (JobState.SKIPPED, JobState.READY), (JobState.RETRYING, JobState.RUNNING)])
def test_illegal_job_moves_are_refused(old: JobState, new: JobState) -> None:
    with pytest.raises(IllegalTransition, match=f"illegal job transition {old} -> {new}"):
        transition(old, new)


def test_finished_states_only_lead_back_to_pending() -> None:
    for state in JobState:
        if state.finished:
            assert JOB_TRANSITIONS[state] == {JobState.PENDING}


def test_illegal_transition_is_a_409() -> None:
    assert IllegalTransition.status == 409 and IllegalTransition.code == "state.illegal-transition"
