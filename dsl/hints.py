"""What syntax errors say: terminal names in words users know, and hints by example.

New hints are data: add a malformed snippet under a label in `HINTS`. An error gets the hint
of an example that failed at the same place (what the parser would have taken there) with
the same kind of token, or at the same place at all for an `anywhere` hint (lark's
`match_examples` idea, with the examples parsed once instead of at every error). No example
that fits means no hint: a hint about another mistake misleads.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Hint:
    """A hint, the malformed snippets it is for, and whether it fits whatever token comes at
    their error's place (`anywhere`) or only the same kind of token as in an example."""

    text: str
    examples: tuple[str, ...]
    anywhere: bool = False
    same_line: bool = False
    """The mistake is within one line (`needs a b`): the hint does not fit a token on the
    next line, which more likely starts the next statement."""


_WF = 'workflow w {\n  version "1.0.0"\n'
_JOB = _WF + '  job a uses shell {\n'

HINTS: dict[str, Hint] = {
    "missing-closing-brace": Hint(
        "a '{' above is not closed; add the missing '}'",
        (_JOB + '    with { command: "x" }\n  job b uses shell { }\n}\n',
         _JOB + '    with { command: "x" }\n',
         _WF + "  input { a: string\n",
         _WF + "  input { a: string\n  job b uses shell { }\n}\n",
         _WF + "  input { a: number = 1\n  job b uses shell { }\n}\n",
         _JOB + '    with { command: "x"\n  }\n}\n'),
    ),
    "missing-uses": Hint(
        "a job names what runs it: 'job NAME uses EXECUTOR { ... }' or "
        "'job NAME uses TEMPLATE@RANGE { ... }'",
        (_WF + "  job a { }\n}\n", _WF + "  job a shell { }\n}\n"),
    ),
    "needs-list": Hint(
        "separate dependencies with commas: 'needs a, b'",
        (_JOB + "    needs a b\n  }\n}\n",),
        same_line=True,
    ),
    "list-comma": Hint(
        "separate list items with commas: [a, b]",
        (_JOB + "    with { x: [1 2] }\n  }\n}\n",),
        same_line=True,
    ),
    "with-needs-braces": Hint(
        "'with' takes an object: with { key: value, ... }",
        (_JOB + '    with command: "x"\n  }\n}\n', _JOB + "    with\n  }\n}\n"),
        anywhere=True,
    ),
    "object-colon": Hint(
        "object fields are written 'key: value'",
        (_JOB + '    with { command = "x" }\n  }\n}\n',
         _JOB + '    with { command "x" }\n  }\n}\n'),
        anywhere=True,
    ),
    "input-colon": Hint(
        "inputs are declared 'name: type', like amount: number or note?: string",
        (_WF + "  input { a string }\n}\n", _WF + "  input { a: string\n    b string }\n}\n"),
        anywhere=True,
    ),
    "and-or": Hint(
        "write boolean logic with words: 'and', 'or', 'not' (not &&, ||, !)",
        (_JOB + "    when input.a > 1 && input.b\n  }\n}\n",
         _JOB + "    when input.a > 1 || input.b\n  }\n}\n",
         _JOB + "    when !input.a\n  }\n}\n"),
    ),
    "equals-equals": Hint(
        "compare with '==' ('=' is only used for input defaults)",
        (_JOB + "    when input.a = 1\n  }\n}\n",),
    ),
    "duration-unit": Hint(
        "durations need a unit: 500ms, 30s, 5m, 2h, 1d or compound like 1m30s",
        (_JOB + "    timeout 30\n  }\n}\n", _JOB + "    retry 3 backoff 5\n  }\n}\n"),
        anywhere=True,
    ),
    "version-string": Hint(
        'write the version as a quoted string: version "1.0.0"',
        ("workflow w {\n  version 1.0.0\n}\n",),
        anywhere=True,
    ),
    "statement-outside-job": Hint(
        "this statement belongs inside a job: job NAME uses EXECUTOR { ... }",
        (_WF + "  needs a\n}\n", _WF + "  when true\n}\n", _WF + "  with { a: 1 }\n}\n",
         _WF + "  retry 3\n}\n", _WF + "  timeout 5s\n}\n"),
    ),
    "job-statement": Hint(
        "a job's statements are: description, needs, when, with, retry, timeout, priority, "
        "for and runs-on",
        (_JOB + "    needz b\n  }\n}\n", _JOB + "    command: \"x\"\n  }\n}\n",
         _JOB + '    with { command: "x" }\n    needz b\n  }\n}\n',
         _JOB + "    timeout 5s\n    needz b\n  }\n}\n",
         _JOB + "    needs b\n    needz b\n  }\n}\n"),
    ),
    "workflow-statement": Hint(
        "a workflow's statements are: version, description, concurrency, input, job, "
        "on failure, output, schedule, webhook, runs and runs-on",
        (_WF + "  jobs a uses shell { }\n}\n", _WF + "  name \"x\"\n}\n"),
    ),
    "top-level": Hint(
        "a file holds 'workflow NAME { ... }' and 'template NAME { ... }' blocks",
        ("job a uses shell { }\n", 'version "1.0.0"\n', "workflow { }\n"),
    ),
    "uses-range": Hint(
        "a template version range comes right after '@', like payment.validate@^1.2",
        (_WF + "  job a uses t@ { }\n}\n",),
        anywhere=True,
    ),
    "schedule-string": Hint(
        'write the cron expression as a quoted string: schedule "0 3 * * *"',
        (_WF + "  schedule 0 3 * * *\n}\n", _WF + "  schedule\n}\n"),
        anywhere=True,
    ),
    "schedule-option": Hint(
        "a schedule's options are: timezone \"Area/City\", missed skip|catch-up and "
        "with { input: value }",
        (_WF + '  schedule "0 3 * * *" timezone Europe\n}\n',
         _WF + '  schedule "0 3 * * *" missed "skip"\n}\n'),
    ),
    "webhook-secret": Hint(
        "name the secret the webhook's callers must send: webhook secret NAME",
        (_WF + "  webhook\n}\n", _WF + '  webhook secret "x"\n}\n',
         _WF + "  webhook NAME\n}\n"),
        anywhere=True,
    ),
    "run-limit": Hint(
        "limit runs like this: runs 1 per input.customer on conflict queue "
        "(or cancel-new, cancel-running)",
        (_WF + "  runs\n}\n", _WF + "  runs 1 on conflict\n}\n",
         _WF + "  runs 1 per input.x on conflict 3\n}\n"),
        anywhere=True,
    ),
    "runs-on-labels": Hint(
        "write one or more worker labels after 'runs-on', separated by commas: "
        "runs-on gpu, linux-x64 (a label has letters, digits, '-' and '_', starts with a "
        "letter, and is not a statement word like 'with')",
        (_JOB + "    runs-on\n  }\n}\n", _JOB + '    runs-on\n    with { command: "x" }\n  }\n}\n',
         _JOB + '    runs-on "gpu"\n  }\n}\n', _JOB + "    runs-on 9gpu\n  }\n}\n",
         _JOB + "    runs-on gpu,\n  }\n}\n", _JOB + '    runs-on gpu,\n    with { }\n  }\n}\n',
         _WF + "  runs-on\n}\n", _WF + "  runs-on\n  job b uses shell { }\n}\n"),
        anywhere=True,
    ),
    "runs-on-list": Hint(
        "separate labels with commas: runs-on gpu, cuda12",
        (_JOB + "    runs-on gpu cuda12\n  }\n}\n",),
        same_line=True,
    ),
    "template-runs-on": Hint(
        "'runs-on' chooses workers for a job: write it in the jobs that use this template",
        ('template t {\n  version "1.0.0"\n  runs-on gpu\n}\n',
         'template t {\n  version "1.0.0"\n  uses shell\n  runs-on gpu\n}\n',
         'template t {\n  version "1.0.0"\n  with { a: 1 }\n  runs-on gpu\n}\n',
         'template t {\n  version "1.0.0"\n  input { a: string }\n  runs-on gpu\n}\n'),
    ),
    "unclosed-string": Hint(
        "strings are closed on the same line; write \\\" for a quote inside a string and "
        "close every '${' with '}'",
        (_JOB + '    with { command: "echo }\n  }\n}\n',),
    ),
}

TERMINAL_WORDS: dict[str, str] = {
    "NAME": "a name",
    "STRING": "a string",
    "NUMBER": "a number",
    "DURATION": "a duration (like 30s, 5m or 1m30s)",
    "RANGE": "a version range (like ^1.2)",
    "WORD": "a word (like queue or catch-up)",
    "ON_CONFLICT": "'on conflict'",
    "RUNS_ON": "'runs-on'",
    "LABEL": "a label (like gpu or linux-x64)",
    "$END": "the end of the file",
}

GROUPS: tuple[tuple[frozenset[str], str], ...] = (
    (frozenset({"NEEDS", "WHEN", "WITH", "RETRY", "TIMEOUT", "PRIORITY", "FOR"}),
     "a job statement (needs, when, with, ...)"),
    (frozenset({"VERSION", "CONCURRENCY", "INPUT", "JOB", "ON", "OUTPUT"}),
     "a workflow statement (version, input, job, output, ...)"),
    (frozenset({"VERSION", "USES", "WITH", "INPUT", "OUTPUT"}),
     "a template statement (version, uses, with, input, output)"),
    (frozenset({"BACKOFF", "FACTOR", "EXPONENTIAL", "FIXED", "MAX", "JITTER"}),
     "a retry option (backoff, factor, max, jitter)"),
    (frozenset({"NAME", "STRING", "NUMBER", "TRUE", "FALSE", "NULL", "LPAR", "LSQB"}),
     "an expression"),
    (frozenset({"EQ", "NE", "LT", "LE", "GT", "GE", "PLUS", "STAR", "SLASH", "AND", "OR"}),
     "an operator"),
)
"""Sets of terminals that read better as one phrase; a group is used when all are expected."""

ABSORBED: dict[str, frozenset[str]] = {
    "an expression": frozenset({"NOT", "MINUS", "LBRACE"}),
    "an operator": frozenset({"MINUS", "PERCENT", "IN", "DOT", "LSQB", "NE"}),
    "a job statement (needs, when, with, ...)": frozenset({"DESCRIPTION", "RUNS_ON"}),
    "a workflow statement (version, input, job, output, ...)": frozenset(
        {"DESCRIPTION", "SCHEDULE", "WEBHOOK", "RUNS", "RUNS_ON"}),
    "a template statement (version, uses, with, input, output)": frozenset({"DESCRIPTION"}),
}
"""Terminals a phrase already covers, so they are not listed again after it."""
