"""Run limits hold across servers sharing PostgreSQL: two servers starting runs of the same
key at the same moment never both take the last place."""
from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

from baseshift.core.app.application import BaseShift
from baseshift.core.states import RunState
from tests.scaleout.conftest import on_postgres

LIMITED = """
workflow limited {
  version "1.0.0"
  input { customer: string }
  runs 1 per input.customer on conflict cancel-new
  job wait uses shell { with { command: "sleep 5" } }
}
"""


async def test_two_servers_never_both_take_the_last_place(pg_url: str, tmp_path: Path) -> None:
    flow = tmp_path / "limited.bsw"
    flow.write_text(LIMITED)
    settings = on_postgres(pg_url, tmp_path / "a")
    async with BaseShift(settings) as a, \
            BaseShift(dataclasses.replace(settings, data_dir=tmp_path / "b")) as b:
        starts = [(server, server.load_workflow(flow)) for server in (a, b)] * 4
        ids = await asyncio.gather(*(server.runs.start_plan(plan, {"customer": "acme"})
                                     for server, plan in starts))
        states = await a.store.run_states(ids)
        admitted = [i for i in ids if states[i] is not RunState.CANCELLED]
        assert len(admitted) == 1, states
        for server in (a, b):
            if admitted[0] in server.engine.runs:
                await server.runs.cancel(admitted[0])
