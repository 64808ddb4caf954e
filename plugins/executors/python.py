"""The `python` step type: call a Python function by its "module.path:callable" name.

```
job total uses python {
  with {
    function: "shop.pricing:total"   # required: "module.path:attribute.path"
    args: [1, 2]                     # optional positional arguments
    currency: "EUR"                  # every other key is a keyword argument
  }
}
```

`function` and `args` are reserved; every other key of the `with` block is passed as a
keyword argument. The return value is the job's output and must be JSON-serialisable
(`json.dumps(..., allow_nan=False)`); containers are normalised to plain JSON values (tuples
become lists, non-string keys become strings), so the output is the same before and after it
is stored. A function raising fails the attempt with the exception's type and message; the
traceback goes to the attempt's log; a function raising `ExecutionError` fails the attempt
with exactly its message. What the function prints (stdout and stderr) goes to the attempt's
log too, line by line, never to the output of the process running it.

Async functions (and objects with an async `__call__`) are awaited on the event loop. Sync
functions run in a worker thread (`python_threads`): they never block the loop. A sync
function cannot be interrupted mid-call: on a timeout or a cancel the attempt is abandoned at
once and reported as such, but the thread runs the call to its end in the background. Write
long-running sync steps to return promptly, or make them async.

Resolved callables are cached per `function` string: the module is imported once per
executor instance, and the per-call cost is a dict lookup plus the call itself.
"""
from __future__ import annotations

import importlib
import inspect
import json
import math
import re
import traceback
from collections.abc import Callable
from typing import Any, ClassVar

from baseshift.core.errors import ExecutionError
from baseshift.core.hookspecs import hookimpl
from baseshift.core.protocols import JobContext, JobResult

from .python_stdio import output_to
from .python_threads import ThreadRunner

_DOTTED = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
FUNCTION_PATTERN = f"^{_DOTTED}:{_DOTTED}$"
_FUNCTION_RE = re.compile(f"{_DOTTED}:{_DOTTED}")
_RESERVED = frozenset({"function", "args"})
# Results of these exact types are JSON values already; skip json.dumps on the hot path.
_PLAIN = frozenset({type(None), bool, int, str})
_NO_ARGS: tuple[()] = ()

Resolved = tuple[Callable[..., Any], bool]


class PythonExecutor:
    """Calls `function` with `args` and the remaining `with` keys as keyword arguments."""

    name: ClassVar[str] = "python"
    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "function": {
                "type": "string",
                "pattern": FUNCTION_PATTERN,
                "description": 'The callable to run, as "module.path:attribute.path".',
            },
            "args": {
                "type": "array",
                "description": "Positional arguments; every other key is a keyword argument.",
            },
        },
        "required": ["function"],
        "additionalProperties": True,
    }

    def __init__(self) -> None:
        self._cache: dict[str, Resolved] = {}
        self._threads = ThreadRunner()

    async def aclose(self) -> None:
        self._threads.close()

    async def execute(self, ctx: JobContext) -> JobResult:
        config = ctx.config
        spec = config.get("function")
        entry = self._cache.get(spec) if type(spec) is str else None
        fn, is_async = entry or self._resolve(spec)
        args = config.get("args", _NO_ARGS)
        if type(args) is not list and args is not _NO_ARGS:
            raise ExecutionError(f"'args' must be a list, got {type(args).__name__}")
        kwargs = {k: v for k, v in config.items() if k not in _RESERVED} if len(config) > 1 else {}
        try:
            with output_to(ctx.log):
                if is_async:
                    result = await fn(*args, **kwargs)
                else:
                    result = await self._threads.run(fn, args, kwargs)
                if type(result) not in _PLAIN:
                    result = await _to_json(spec, result)
        except ExecutionError:
            raise
        except (Exception, SystemExit) as exc:
            # SystemExit too: a step calling sys.exit() must fail its attempt, not the server.
            ctx.log(traceback.format_exc().rstrip("\n"))
            raise ExecutionError(
                f"function {spec!r} raised {type(exc).__name__}: {exc}"
            ) from exc
        return JobResult(output=result, log="\n".join(ctx.lines))

    def _resolve(self, spec: object) -> Resolved:
        if not isinstance(spec, str) or not _FUNCTION_RE.fullmatch(spec):
            raise ExecutionError(
                f"'function' must be a string \"module.path:callable\", got {spec!r}",
                hint='for example function: "mypackage.steps:build"',
            )
        fn = _load(spec)
        entry = (fn, _is_async(fn))
        self._cache[spec] = entry
        return entry


def _load(spec: str) -> Callable[..., Any]:
    """Import the module of `spec` and walk its attribute path to a callable."""
    module_name, _, attr_path = spec.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ExecutionError(
            f"cannot import module {module_name!r} for function {spec!r}: {exc}",
            hint="check the module path and that its package is installed on the server",
        ) from exc
    except Exception as exc:
        raise ExecutionError(
            f"importing module {module_name!r} for function {spec!r} failed: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    for part in attr_path.split("."):
        if not hasattr(obj, part):
            raise ExecutionError(
                f"function {spec!r}: {_describe(obj)} has no attribute {part!r}",
                hint=_suggest(obj),
            )
        obj = getattr(obj, part)
    if not callable(obj):
        raise ExecutionError(f"function {spec!r} is a {type(obj).__name__}, not a callable")
    return obj  # type: ignore[no-any-return]


def _is_async(fn: Callable[..., Any]) -> bool:
    call = getattr(fn, "__call__", None)  # noqa: B004 - an instance with async __call__
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(call)


async def _to_json(spec: str | None, result: Any) -> Any:
    """Return `result` as plain JSON values, awaiting it first if a sync call returned one."""
    if inspect.isawaitable(result):
        result = await result
    if type(result) in _PLAIN:
        return result
    if type(result) is float and math.isfinite(result):
        return result
    try:
        text = json.dumps(result, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ExecutionError(
            f"function {spec!r} returned a value that is not JSON-serialisable: {exc}",
            hint="return dicts, lists, strings, numbers, booleans or None",
        ) from exc
    return json.loads(text)


def _describe(obj: object) -> str:
    if inspect.ismodule(obj):
        return f"module {obj.__name__!r}"
    return f"{type(obj).__name__} {getattr(obj, '__qualname__', obj)!r}"


def _suggest(obj: object) -> str | None:
    names = [n for n in dir(obj) if not n.startswith("_") and callable(getattr(obj, n, None))]
    if not names:
        return None
    shown = ", ".join(sorted(names)[:10])
    return f"callables available: {shown}" + (", ..." if len(names) > 10 else "")


@hookimpl
def register_executors() -> list[type]:
    return [PythonExecutor]
