"""The one error hierarchy: every error has a stable dotted code, an HTTP status and a hint."""
from __future__ import annotations

from typing import Any, ClassVar

from .diagnostics import Diagnostic, printable


class BaseShiftError(Exception):
    """Base of every error Base Shift raises on purpose.

    `code` is stable and machine-readable (API clients and tests match on it); `status` is
    the HTTP status the API answers with; `hint` tells the user what to do next.
    """

    code: ClassVar[str] = "baseshift.error"
    status: ClassVar[int] = 500

    def __init__(self, message: str, *, hint: str | None = None,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = details or {}
        """Machine-readable specifics (e.g. `field` for bad input), added to API problems."""

    def __str__(self) -> str:
        return self.message if self.hint is None else f"{self.message} (hint: {self.hint})"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class ConfigError(BaseShiftError):
    code = "config.invalid"


class PluginError(BaseShiftError):
    code = "plugin.invalid"


class DSLError(BaseShiftError):
    """A workflow file failed to parse or check; `diagnostics` holds every problem found."""

    code = "dsl.invalid"
    status = 400

    def __init__(self, message: str, diagnostics: list[object] | None = None) -> None:
        super().__init__(message)
        self.diagnostics = list(diagnostics or [])


class LogQueryError(BaseShiftError):
    """A log query that cannot be read; `diagnostics` holds every problem found, located in
    `source` (the query's text) for `diagnostics.render`. `details["errors"]` has them as
    JSON, so the API's problem lists them under `errors` like a workflow file's (DSLError)."""

    code = "logs.bad-query"
    status = 400

    def __init__(self, diagnostics: list[Diagnostic], source: str = "") -> None:
        first = diagnostics[0] if diagnostics else None
        more = len(diagnostics) - 1
        message = "the log query is not valid" + (f": {printable(first.message)}"
                                                  if first else "")
        if more > 0:
            message += f" (and {more} more problem{'s' if more > 1 else ''})"
        super().__init__(message, hint=printable(first.hint) if first and first.hint else None,
                         details={"errors": [d.to_json() for d in diagnostics]})
        self.diagnostics = list(diagnostics)
        self.source = source


class InputError(BaseShiftError):
    """Run inputs do not match the workflow's declared input types."""

    code = "run.bad-input"
    status = 422


class QueryRefused(InputError):
    """A query the database admin API will not explain: not one read-only statement, or
    refused by the database in its read-only transaction."""

    code = "database.query-refused"


class NotFound(BaseShiftError):
    code = "not-found"
    status = 404


class Conflict(BaseShiftError):
    code = "conflict"
    status = 409


class StaleState(Conflict):
    """A guarded write found records that another process moved since this one read them;
    nothing of the batch was written. `run_ids` are the runs concerned."""

    code = "conflict.stale"

    def __init__(self, message: str, run_ids: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.run_ids = run_ids


class Gone(BaseShiftError):
    """The resource existed and was removed for good (an erased run: its tombstone is in
    `details`)."""

    code = "gone"
    status = 410


class StoreError(BaseShiftError):
    """The state store could not read or write (disk full, database locked, file removed)."""

    code = "store.failed"
    status = 503


class IllegalTransition(Conflict):
    """A state machine refused a transition (e.g. SUCCEEDED -> RUNNING)."""

    code = "state.illegal-transition"


class ExpressionError(BaseShiftError):
    """An expression failed at run time (e.g. indexing past the end of a list)."""

    code = "expr.error"
    status = 400


class ExecutionError(BaseShiftError):
    """A job attempt failed; becomes the attempt's error, never an HTTP error."""

    code = "job.failed"


class JobTimeout(ExecutionError):
    code = "job.timeout"


class BadRequest(BaseShiftError):
    """A request that cannot be read at all: malformed JSON, a wrong content type."""

    code = "request.malformed"
    status = 400


class Unauthorized(BaseShiftError):
    """A missing, wrong, expired or revoked credential (a token, a password, a webhook
    secret): the client should authenticate (again)."""

    code = "auth.unauthorized"
    status = 401


class Forbidden(BaseShiftError):
    """An authenticated actor asking for something its grants do not allow."""

    code = "auth.forbidden"
    status = 403


class SealError(BaseShiftError):
    """A sealed value that cannot be opened: unknown or retired key, tampered ciphertext, not
    a sealed value at all. Never a 500: the caller sent (or stored) something wrong."""

    code = "keys.unseal-failed"
    status = 422
