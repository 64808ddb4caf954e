"""Secret inputs through the engine (core/secretvalues.py): the job receives exactly the
value given, whatever text it is, while the store only ever holds it sealed; a retried
attempt opens the sealed input again; stored job inputs show `***` for what is built from
one."""
from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from baseshift.core.app.application import BaseShift
from baseshift.core.errors import InputError
from baseshift.core.report import snapshot_json
from baseshift.core.sealing import is_sealed
from baseshift.core.secretvalues import hidden, stored_config
from baseshift.core.settings import Settings
from baseshift.core.states import JobState, RunState
from tests.sealer_support import sealer_plugins

RECEIVED: list[Any] = []
FAILS_LEFT = {"n": 0}


def receive(token: Any, keys: Any = None, note: str = "") -> dict[str, Any]:
    RECEIVED.append((token, keys))
    if FAILS_LEFT["n"] > 0:
        FAILS_LEFT["n"] -= 1
        raise RuntimeError("failing once on purpose")
    return {"ok": True}


SOURCE = """workflow keep {
  version "1.0.0"
  input { token: secret string, keys?: secret list<string>, note: string = "n" }
  job take uses python {
    retry 2 backoff 1ms
    with { function: "test_secret_values:receive", token: input.token,
           keys: input.keys, note: "${input.note} ${len(input.token)}" }
  }
}
"""


async def _run(folder: Path, inputs: dict[str, Any]) -> Any:
    bs = BaseShift(Settings(load_entrypoints=False, store="memory", data_dir=folder / "data"),
                   plugins=sealer_plugins())
    async with bs:
        path = folder / "keep.bsw"
        path.write_text(SOURCE)
        plan = bs.load_workflow(path)
        run_id = await bs.runs.start_plan(plan, inputs)
        await bs.engine.wait(run_id)
        snapshot = await bs.store.load_run(run_id)
        return plan, snapshot


# any text the API accepts: no lone surrogates (refused before anything is stored)
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(token=TEXT, keys=st.none() | st.lists(TEXT, max_size=3))
def test_the_job_receives_exactly_the_value_and_the_store_holds_it_sealed(
        token: str, keys: list[str] | None) -> None:
    RECEIVED.clear()
    FAILS_LEFT["n"] = 0
    with tempfile.TemporaryDirectory() as folder:
        _, snapshot = asyncio.run(_run(Path(folder), {"token": token, "keys": keys}))
    assert snapshot.run.state is RunState.COMPLETED
    assert RECEIVED == [(token, keys)]
    stored = snapshot.run.inputs
    assert is_sealed(stored["token"]) and (keys is None) == (stored["keys"] is None)
    assert stored["note"] == "n"
    job = snapshot.jobs["take"]
    assert job.inputs["token"] == job.inputs["keys"] == "***"
    assert job.inputs["note"] == "n ***"  # the part built from the secret
    shown = snapshot_json(snapshot)
    assert shown["inputs"]["token"] == "***"
    if len(token) >= 3:  # shorter values are not masked (core/masking.py)
        assert token not in json.dumps(shown["inputs"]) + json.dumps(job.inputs)


def test_a_retried_attempt_opens_the_sealed_input_again(tmp_path: Path) -> None:
    RECEIVED.clear()
    FAILS_LEFT["n"] = 2
    _, snapshot = asyncio.run(_run(tmp_path, {"token": 'a "quoted" tökén'}))
    assert snapshot.run.state is RunState.COMPLETED
    assert snapshot.jobs["take"].state is JobState.SUCCEEDED
    assert snapshot.jobs["take"].attempts == 3
    assert RECEIVED == [('a "quoted" tökén', None)] * 3


def test_inputs_are_checked_before_anything_is_sealed(tmp_path: Path) -> None:
    RECEIVED.clear()
    for inputs in ({"token": 5}, {"token": "t", "keys": '["a", "b'}, {"token": "t", "keys": [7]}):
        try:
            asyncio.run(_run(tmp_path, inputs))
        except InputError as exc:
            assert "secret input" in exc.message and "7" not in exc.message
            assert '"a"' not in exc.message and "5" not in exc.message
        else:
            raise AssertionError(f"{inputs} does not fit")


def test_hidden_replaces_every_sealed_value_at_any_depth() -> None:
    value = {"a": "bsenc:x", "b": ["plain", {"c": "bsenc:y"}], "d": 3}
    assert hidden(value) == {"a": "***", "b": ["plain", {"c": "***"}], "d": 3}


def test_stored_config_hides_what_reads_a_secret(tmp_path: Path) -> None:
    async def plan() -> Any:
        bs = BaseShift(Settings(load_entrypoints=False, store="memory",
                                data_dir=tmp_path / "data"), plugins=sealer_plugins())
        async with bs:
            path = tmp_path / "keep.bsw"
            path.write_text(SOURCE)
            return bs.load_workflow(path)

    loaded = asyncio.run(plan())
    scope = {"input": {"token": "bsenc:zz", "keys": None, "note": "hello"}}
    assert stored_config(loaded.job("take"), scope, loaded) == {
        "function": "test_secret_values:receive", "token": "***", "keys": "***",
        "note": "hello ***"}


def test_without_a_sealer_a_run_with_secret_inputs_is_refused(tmp_path: Path) -> None:
    """Fail closed: with no plugin sealing values (the builtin `keys` one disabled, if it
    exists), the run is refused and nothing is stored."""
    from baseshift.core.errors import ConfigError
    from baseshift.core.plugins import BUILTIN_PLUGINS

    async def attempt() -> list[Any]:
        bs = BaseShift(Settings(load_entrypoints=False, store="memory",
                                data_dir=tmp_path / "data",
                                disabled_plugins=("keys",) if "keys" in BUILTIN_PLUGINS else ()))
        async with bs:
            path = tmp_path / "keep.bsw"
            path.write_text(SOURCE)
            plan = bs.load_workflow(path)
            try:
                await bs.runs.start_plan(plan, {"token": "a secret"})
            except ConfigError as exc:
                assert "seals" in exc.message
            else:
                raise AssertionError("the run was accepted")
            return list(await bs.store.list_runs())

    assert asyncio.run(attempt()) == []


def issue(name: str) -> dict[str, Any]:
    return {"session": f"S-{name}-{'x' * 4}", "user": name}


def consume(sessions: Any, users: Any) -> dict[str, Any]:
    RECEIVED.append((sessions, users))
    return {"n": len(sessions)}


FANOUT = """template vault.issue {
  version "1.0.0"
  uses python
  input { name: string }
  output { session: secret string, user: string }
  with { function: "test_secret_values:issue", name: input.name }
}

workflow fan {
  version "1.0.0"
  job issue uses vault.issue@^1 {
    for n in ["ann", "bob"]
    with { name: n }
  }
  job take uses python {
    needs issue
    with { function: "test_secret_values:consume",
           sessions: [issue.output[0].session, issue.output[1].session],
           users: [issue.output[0].user, issue.output[1].user] }
  }
  output { users: [issue.output[0].user, issue.output[1].user] }
}
"""


def test_secret_outputs_of_a_fanned_out_template_are_sealed_and_opened(tmp_path: Path) -> None:
    RECEIVED.clear()

    async def go() -> Any:
        bs = BaseShift(Settings(load_entrypoints=False, store="sqlite",
                                data_dir=tmp_path / "data"), plugins=sealer_plugins())
        async with bs:
            path = tmp_path / "fan.bsw"
            path.write_text(FANOUT)
            plan = bs.load_workflow(path)
            run_id = await bs.runs.start_plan(plan, {})
            await bs.engine.wait(run_id)
            return await bs.store.load_run(run_id)

    snapshot = asyncio.run(go())
    assert snapshot.run.state is RunState.COMPLETED, snapshot.run.error
    assert snapshot.run.outputs == {"users": ["ann", "bob"]}
    assert RECEIVED == [(["S-ann-xxxx", "S-bob-xxxx"], ["ann", "bob"])]
    items = snapshot.jobs["issue"].output
    assert [is_sealed(i["session"]) for i in items] == [True, True]
    assert snapshot.jobs["take"].inputs["sessions"] == ["***", "***"]
    assert snapshot.jobs["take"].inputs["users"] == ["ann", "bob"]
    stored = (tmp_path / "data").glob("baseshift.db*")
    assert not any(b"S-ann" in f.read_bytes() for f in stored if f.is_file())
