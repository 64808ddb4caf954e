"""The ready-jobs tracker (core/readyjobs.py) follows a `track_events` batch as it would
follow its events one by one, and counts a batch given by several readers once."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from baseshift.core.events import Event, JobStateChanged, RunStateChanged
from baseshift.core.readyjobs import ReadyJobs
from baseshift.core.states import JobState, RunState

job_events = st.builds(
    JobStateChanged, run_id=st.sampled_from(["r1", "r2"]),
    at=st.floats(0, 100, allow_nan=False), job=st.sampled_from(["a", "b", "c[0]", "c[1]"]),
    old=st.none(), new=st.sampled_from(list(JobState)))
run_ends = st.builds(RunStateChanged, run_id=st.sampled_from(["r1", "r2"]),
                     at=st.just(100.0), workflow=st.just("w"), old=st.none(),
                     new=st.sampled_from([RunState.COMPLETED, RunState.FAILED]))


@given(st.lists(st.lists(job_events, max_size=12), max_size=6), st.lists(run_ends, max_size=1))
def test_a_batch_is_followed_as_its_events_one_by_one(batches: list[list[Event]],
                                                      ends: list[Event]) -> None:
    one_by_one, batched = ReadyJobs(), ReadyJobs()
    for batch in [*batches, ends]:
        for event in batch:
            one_by_one.observe(event)
        batched.observe_all(tuple(batch))
    assert batched.since == one_by_one.since
    assert batched.oldest() == one_by_one.oldest()


def test_the_same_batch_from_a_second_reader_is_counted_once() -> None:
    tracker = ReadyJobs()
    batch = (JobStateChanged("r1", 5.0, "a", JobState.PENDING, JobState.READY),)
    tracker.observe_all(batch)
    tracker.since.clear()  # had the batch been followed again, "a" would be back
    tracker.observe_all(batch)
    assert len(tracker) == 0
    tracker.observe_all(tuple(list(batch)))  # a new batch with the same event: followed
    assert tracker.waiting(15.0) == (1, 10.0)
