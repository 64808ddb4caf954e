"""Base Shift's public API for plugin authors: `from baseshift.core import hookimpl, ...`.

Everything a plugin needs to add an executor, a backend (state store, template store,
queue, cache), a CLI command, an event observer, a secret resolver or a plan check is
importable from here; route helpers, which need Starlette, come from `baseshift.web`.
docs/plugins.md ("The public API") lists every name, and a test keeps the two in step.
Submodules are implementation: their names may move between versions, these may not.

The names are imported on first use (PEP 562), so `import baseshift.core` (and the command
line, which imports `baseshift.core.app.cli`) loads no engine, driver or web framework."""
from __future__ import annotations

from typing import TYPE_CHECKING

from .exports import lazy_exports

if TYPE_CHECKING:
    from baseshift.plugins.templates.publishing import (
        check_publish,
        filter_versions,
        matches,
        retired_version,
        select,
        sorted_docs,
    )

    from .app.application import BaseShift
    from .appface import App
    from .cache import Cache, CacheStats, JSONValue, check_key, check_ttl, decode, encode
    from .capabilities import (
        AttemptReads,
        Backups,
        DatabaseAdmin,
        DataKeyRecord,
        DataKeys,
        Erasure,
        Leadership,
        LegalHolds,
        Retention,
        RetentionPolicies,
        SharedDocuments,
        SharedLocks,
    )
    from .command import (
        Command,
        ExitCode,
        existing_file,
        existing_path,
        print_json,
        run_async,
        settings_from,
    )
    from .config import masked, option
    from .console import configure_console
    from .diagnostics import Diagnostic, Severity, Span
    from .errors import (
        BadRequest,
        BaseShiftError,
        ConfigError,
        Conflict,
        DSLError,
        ExecutionError,
        ExpressionError,
        Gone,
        IllegalTransition,
        InputError,
        JobTimeout,
        NotFound,
        PluginError,
        QueryRefused,
        StaleState,
        StoreError,
        Unauthorized,
    )
    from .events import Event, JobsAdded, JobStateChanged, RunStateChanged
    from .hookspecs import hookimpl, hookspec
    from .json_text import NOT_JSON, dumps_compact, loads_strict, output_json
    from .notifications import Notice, Notifier
    from .plan import JobSpec, Plan, TemplateSpec
    from .protocols import (
        AcceptsCalls,
        AttemptQueue,
        Closable,
        Executor,
        JobContext,
        JobResult,
        LostAttempt,
        QueuedAttempt,
        RunAnalytics,
        StateStore,
    )
    from .records import (
        MAX_PAGE,
        AttemptRecord,
        Changes,
        HourCount,
        JobDuration,
        JobRecord,
        JobSuccess,
        Retired,
        RunCursor,
        RunPage,
        RunPerformance,
        RunQuery,
        RunRecord,
        RunSnapshot,
        SuccessRates,
        WorkflowPerformance,
        WorkflowRuns,
    )
    from .registry import Backend, BackendClass, Offered, Requirement
    from .retention import Pruned, Tombstone
    from .settings import Settings
    from .stash import Stash, StashKey
    from .states import JobState, RunState
    from .tasks import cancel_and_wait
    from .templatestore import (
        DOCUMENT_KEYS,
        Bump,
        StepDocument,
        TemplateDocument,
        TemplateError,
        TemplateExists,
        TemplateIncompatible,
        TemplateReadOnly,
        TemplateStore,
        not_found,
        parse_document,
    )

__all__ = [
    # hooks
    "App", "hookimpl", "hookspec",
    # executors
    "Executor", "JobContext", "JobResult", "NOT_JSON", "loads_strict", "output_json",
    "AcceptsCalls", "Closable",
    # backends and their settings
    "Backend", "BackendClass", "Offered", "Requirement", "Settings", "masked", "option",
    # plugin state
    "Stash", "StashKey",
    # state stores
    "AttemptRecord", "Changes", "JobDuration", "JobRecord", "JobSuccess", "MAX_PAGE",
    "RunCursor", "RunPage", "RunPerformance", "RunQuery", "RunRecord", "RunSnapshot",
    "StateStore", "SuccessRates", "WorkflowPerformance", "WorkflowRuns", "HourCount",
    "dumps_compact",
    "RunAnalytics", "Backups", "Leadership", "Retention", "Retired", "SharedDocuments",
    "SharedLocks", "DataKeys", "DataKeyRecord", "RetentionPolicies", "LegalHolds", "Erasure",
    "Pruned", "Tombstone", "DatabaseAdmin", "AttemptReads",
    # template stores
    "Bump", "DOCUMENT_KEYS", "StepDocument", "TemplateDocument", "TemplateError",
    "TemplateExists", "TemplateIncompatible", "TemplateReadOnly", "TemplateSpec",
    "TemplateStore", "check_publish", "filter_versions", "matches", "not_found",
    "parse_document", "retired_version", "select", "sorted_docs",
    # queues
    "AttemptQueue", "LostAttempt", "QueuedAttempt",
    # caches
    "Cache", "CacheStats", "JSONValue", "check_key", "check_ttl", "decode", "encode",
    # events and states
    "Event", "JobState", "JobStateChanged", "JobsAdded", "RunState", "RunStateChanged",
    # alert notifiers
    "Notice", "Notifier",
    # workflows and plan checks
    "Diagnostic", "JobSpec", "Plan", "Severity", "Span",
    # errors
    "BadRequest", "BaseShiftError", "ConfigError", "Conflict", "DSLError", "ExecutionError",
    "ExpressionError", "IllegalTransition", "InputError", "JobTimeout", "NotFound",
    "PluginError", "StaleState", "StoreError", "Unauthorized", "Gone", "QueryRefused",
    # commands
    "BaseShift", "Command", "ExitCode", "configure_console", "existing_file",
    "existing_path", "print_json", "run_async", "settings_from",
    # background tasks
    "cancel_and_wait",
]

if not TYPE_CHECKING:  # type checkers read the imports above, and reject other names
    __getattr__, __dir__ = lazy_exports(globals(), {
        "app.application": ("BaseShift",),
        "appface": ("App",),
        "cache": ("Cache", "CacheStats", "JSONValue", "check_key", "check_ttl", "decode", "encode"),
        "command": ("Command", "ExitCode", "existing_file", "existing_path", "print_json",
                    "run_async", "settings_from"),
        "capabilities": ("AttemptReads", "Backups", "DatabaseAdmin", "DataKeyRecord",
                         "DataKeys", "Erasure", "Leadership",
                         "LegalHolds", "Retention", "RetentionPolicies", "SharedDocuments",
                         "SharedLocks"),
        "config": ("masked", "option"),
        "console": ("configure_console",),
        "diagnostics": ("Diagnostic", "Severity", "Span"),
        "errors": ("BadRequest", "BaseShiftError", "ConfigError", "Conflict", "DSLError",
                   "ExecutionError", "ExpressionError", "IllegalTransition", "InputError",
                   "JobTimeout", "NotFound", "PluginError", "StaleState", "StoreError",
                   "Unauthorized", "Gone", "QueryRefused"),
        "events": ("Event", "JobStateChanged", "JobsAdded", "RunStateChanged"),
        "hookspecs": ("hookimpl", "hookspec"),
        "notifications": ("Notice", "Notifier"),
        "json_text": ("NOT_JSON", "dumps_compact", "loads_strict", "output_json"),
        "plan": ("JobSpec", "Plan", "TemplateSpec"),
        "protocols": ("AcceptsCalls", "AttemptQueue", "Closable", "Executor", "JobContext",
                      "JobResult", "LostAttempt", "QueuedAttempt", "RunAnalytics", "StateStore"),
        "retention": ("Pruned", "Tombstone"),
        "records": ("AttemptRecord", "Changes", "JobDuration", "JobRecord", "JobSuccess",
                    "MAX_PAGE", "RunCursor", "RunPage", "RunPerformance", "RunQuery", "RunRecord",
                    "RunSnapshot", "Retired", "SuccessRates", "WorkflowPerformance",
                    "WorkflowRuns", "HourCount"),
        "registry": ("Backend", "BackendClass", "Offered", "Requirement"),
        "settings": ("Settings",),
        "stash": ("Stash", "StashKey"),
        "states": ("JobState", "RunState"),
        "tasks": ("cancel_and_wait",),
        "templatestore": ("Bump", "DOCUMENT_KEYS", "StepDocument", "TemplateDocument",
                          "TemplateError", "TemplateExists", "TemplateIncompatible",
                          "TemplateReadOnly", "TemplateStore", "not_found", "parse_document"),
        "baseshift.plugins.templates.publishing": ("check_publish", "filter_versions", "matches",
                                                   "retired_version", "select", "sorted_docs"),
    })
