"""A third-party plugin as users would write one: a step type, a job template and a command.

It imports only Base Shift's public module, `baseshift.core`, as docs/plugins.md asks."""
from __future__ import annotations

import argparse
from typing import Any, ClassVar

from baseshift.core import (
    Command,
    ExitCode,
    JobContext,
    JobResult,
    hookimpl,
    option,
    settings_from,
)

WORDS = {"en": "hello", "fr": "bonjour", "de": "hallo"}


def greeting(name: str, language: str) -> str:
    """`name` greeted in `language`, in English when the language is not known."""
    return f"{WORDS.get(language, WORDS['en'])} {name}"


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
        ctx.log(f"greeting {ctx.config['name']}")
        return JobResult(output={"greeting": greeting(ctx.config["name"],
                                                      ctx.config.get("language", ""))})


def _hello_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="who to greet")
    parser.add_argument("--language", choices=sorted(WORDS),
                        help="the language (default: [plugins.hello] language, else en)")


def cmd_hello(args: argparse.Namespace) -> int:
    """`baseshift hello NAME`: the greeting the `greet` step would give."""
    language = args.language or option(settings_from(args), "hello", "language", "en")
    print(greeting(args.name, language))
    return ExitCode.OK


@hookimpl
def register_executors() -> list[type]:
    return [GreetExecutor]


@hookimpl
def register_commands() -> list[Command]:
    return [Command("hello", "greet someone, as the `greet` step does", _hello_args,
                    cmd_hello)]


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
