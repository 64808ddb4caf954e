"""`uses manual`: a job that waits for an outside call (an approval, a callback) to finish it.

The job's attempt stays RUNNING until `POST /api/v1/workflows/{run}/jobs/{job}/complete`
(with an output) or `/fail` (with an error) arrives, or its timeout passes. If the server
stops meanwhile, the resumed run waits again in a new attempt.
"""
from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, UnknownType

from baseshift.core.errors import Conflict, ExecutionError, InputError
from baseshift.core.hookspecs import hookimpl
from baseshift.core.protocols import Executor, JobContext, JobResult

Outcome = tuple[Any, str | None]


class ManualExecutor:
    """Waits for `accept(run_id, job, output, error)`, which the run service calls."""

    name: ClassVar[str] = "manual"
    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "prompt": {"type": "string", "description": "what the person or system should do"},
            "output_schema": {"type": "object",
                              "description": "JSON Schema the completing call's output must meet"},
        },
        "additionalProperties": False,
    }

    def __init__(self) -> None:
        self._waiting: dict[tuple[str, str], tuple[asyncio.Future[Outcome], dict[str, Any]]] = {}

    async def execute(self, ctx: JobContext) -> JobResult:
        schema = ctx.config.get("output_schema")
        if isinstance(schema, dict):
            try:
                Draft202012Validator.check_schema(schema)
            except SchemaError as exc:
                raise ExecutionError(f"output_schema is not a valid JSON Schema: "
                                     f"{exc.message}") from None
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._waiting[(ctx.run_id, ctx.job)] = (future, ctx.config)
        ctx.log(str(ctx.config.get("prompt") or "waiting for a complete or fail call"))
        try:
            output, error = await future
        finally:
            self._waiting.pop((ctx.run_id, ctx.job), None)
        if error is not None:
            raise ExecutionError(error)
        ctx.log("completed by an outside call")
        return JobResult(output, "\n".join(ctx.lines))

    def accept(self, run_id: str, job: str, output: Any, error: str | None) -> None:
        """Finish the waiting attempt; InputError if `output` breaks the job's output_schema."""
        waiting = self._waiting.get((run_id, job))
        if waiting is None or waiting[0].done():
            raise Conflict(f"job '{job}' of run '{run_id}' is not waiting for a result yet",
                           hint="try again in a moment")
        future, config = waiting
        schema = config.get("output_schema")
        if error is None and isinstance(schema, dict):
            try:
                problems = [e.message for e in Draft202012Validator(schema).iter_errors(output)]
            except (SchemaError, UnknownType) as exc:
                raise Conflict(f"job '{job}' has an output_schema that is not a valid JSON "
                               f"Schema ({exc.message if isinstance(exc, SchemaError) else exc});"
                               " fail the job and fix the workflow") from None
            if problems:
                raise InputError(f"the output does not match the job's output_schema: "
                                 f"{'; '.join(problems[:3])}", details={"field": "output"})
        future.set_result((output, error))


@hookimpl
def register_executors() -> list[type[Executor]]:
    return [ManualExecutor]
