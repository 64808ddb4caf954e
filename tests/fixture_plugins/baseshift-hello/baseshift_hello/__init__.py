"""A third-party plugin as users would write one: a step type and a job template."""
from __future__ import annotations

from typing import Any, ClassVar

from baseshift.core import hookimpl
from baseshift.core.protocols import JobContext, JobResult


class GreetExecutor:
    """`uses greet`: greets `name`, in `language` if given."""

    name: ClassVar[str] = "greet"
    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "language": {"type": "string"}},
        "required": ["name"],
        "additionalProperties": False,
    }

    async def execute(self, ctx: JobContext) -> JobResult:
        word = {"fr": "bonjour", "de": "hallo"}.get(ctx.config.get("language", ""), "hello")
        ctx.log(f"greeting {ctx.config['name']}")
        return JobResult(output={"greeting": f"{word} {ctx.config['name']}"})


@hookimpl
def register_executors() -> list[type]:
    return [GreetExecutor]


@hookimpl
def register_job_templates() -> list[str]:
    return ['''
template hello.polite {
  version "1.0.0"
  description "Greet someone politely"
  uses greet
  with { name: "dear ${input.who}", language: input.language }
  input { who: string, language: string = "fr" }
  output { greeting: string }
}
''']
