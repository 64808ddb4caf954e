"""Jinja2 rendering for web plugins: one environment per application, htmx-aware `render`.

Templates are looked up in this order: folders a plugin or the settings add (so a plugin can
override any page), then the builtin templates. `{% extends "default:base.html" %}` always
reaches the builtin template, so an override can extend the page it replaces.
"""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse

from baseshift.core.access import Actor
from baseshift.core.json_text import replace_surrogates
from baseshift.core.secretvalues import hidden
from baseshift.core.stash import StashKey

from .access import actor_of, may_follow
from .authn import CSRF_CLAIM

if TYPE_CHECKING:
    from baseshift.core.appface import App

STASH_KEY: StashKey[jinja2.Environment] = StashKey("web.jinja")
TEMPLATE_DIRS_KEY: StashKey[list[str | Path]] = StashKey("web.template_dirs")
"""`bs.stash[TEMPLATE_DIRS_KEY]`: a list of folders a plugin appends to in `configure`."""


def add_templates(bs: App, folder: Path) -> None:
    """Let pages find the templates in `folder` (a plugin's `templates`), in `configure`."""
    bs.stash.setdefault(TEMPLATE_DIRS_KEY, []).append(folder)

HTMX_JS = "htmx-2.0.11.min.js"
SSE_JS = "htmx-ext-sse-2.2.4.min.js"


def builtin_templates() -> Path:
    """The folder of the builtin templates inside the installed package."""
    return Path(str(files("baseshift.web") / "templates"))


def builtin_static() -> Path:
    """The folder of the vendored scripts and the stylesheet inside the installed package."""
    return Path(str(files("baseshift.web") / "static"))


def make_environment(extra_dirs: Iterable[str | Path] = ()) -> jinja2.Environment:
    """An autoescaping environment: `extra_dirs` first, then `default:`-prefixed builtins."""
    builtin = jinja2.FileSystemLoader(str(builtin_templates()))
    loader = jinja2.ChoiceLoader([
        jinja2.FileSystemLoader([str(d) for d in extra_dirs]),
        jinja2.PrefixLoader({"default": builtin}, delimiter=":"),
        builtin,
    ])
    env = jinja2.Environment(loader=loader, autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.globals.update(url_for=_url_for, static=_static, htmx_js=HTMX_JS, sse_js=SSE_JS,
                       csrf_token=_csrf_token, current_actor=_current_actor,
                       has_route=_has_route, may_follow=_may_follow)
    env.filters.update(when=format_time, duration=format_duration, pretty_json=pretty_json,
                       state_class=state_class)
    return env


def environment(bs: App) -> jinja2.Environment:
    """The application's environment, built once (plugins add folders before first use)."""
    env = bs.stash.get(STASH_KEY)
    if env is None:
        extra = [*bs.stash.get(TEMPLATE_DIRS_KEY, []),
                 *bs.settings.extra.get("web", {}).get("template_dirs", ())]
        env = bs.stash[STASH_KEY] = make_environment(extra)
    return env


def is_htmx(request: Request) -> bool:
    """Whether htmx sent this request (it then wants a fragment, not a page)."""
    return request.headers.get("HX-Request") == "true"


def render(request: Request, template: str, context: Mapping[str, Any], *,
           block: str | None = None, status: int = 200,
           headers: Mapping[str, str] | None = None) -> HTMLResponse:
    """The whole page, or only `{% block block %}` when htmx asked (`HX-Request` header)."""
    html = render_text(request, template, context,
                       block=block if is_htmx(request) else None)
    response = HTMLResponse(html, status_code=status, headers=dict(headers or {}))
    response.headers["Vary"] = "HX-Request"
    return response


def render_text(request: Request, template: str, context: Mapping[str, Any], *,
                block: str | None = None) -> str:
    """Render a template (or one of its blocks) to a string, with `request` in scope. Lone
    surrogates (text an older version stored) come out as U+FFFD, so the page can be sent."""
    env = environment(request.app.state.baseshift)
    page = env.get_template(template)
    values = {"request": request, **context}
    if block is None:
        return replace_surrogates(page.render(values))
    if block not in page.blocks:
        raise KeyError(f"template {template!r} has no block {block!r}")
    return replace_surrogates("".join(page.blocks[block](page.new_context(values))))


@jinja2.pass_context
def _url_for(context: Mapping[str, Any], name: str, /, **params: Any) -> str:
    request: Request = context["request"]
    return str(request.url_for(name, **{k: str(v) for k, v in params.items()}).path)


@jinja2.pass_context
def _has_route(context: Mapping[str, Any], name: str, /) -> bool:
    """Whether a route called `name` exists: a link to a page of a plugin that may be
    disabled is shown only when the page is there."""
    request: Request = context["request"]
    return any(getattr(route, "name", None) == name for route in request.app.router.routes)


@jinja2.pass_context
def _static(context: Mapping[str, Any], path: str) -> str:
    return _url_for(context, "static", path=path)


@jinja2.pass_context
def _current_actor(context: Mapping[str, Any]) -> Actor:
    """Who the page is for (the header shows the name and a sign-out button)."""
    return actor_of(context["request"])


@jinja2.pass_context
def _may_follow(context: Mapping[str, Any], permission: str) -> bool:
    """Whether the menu may link to a page needing `permission` (web/access.py)."""
    return may_follow(context["request"], permission)


@jinja2.pass_context
def _csrf_token(context: Mapping[str, Any]) -> str:
    """The CSRF token every form of a signed-in page carries (web/authn.py checks it)."""
    token = actor_of(context["request"]).claims.get(CSRF_CLAIM)
    return token if isinstance(token, str) else ""


def format_time(value: float | None) -> str:
    """A stored timestamp as `2024-05-01 12:00:03` in UTC, or an em dash when unset."""
    if not value:
        return "—"
    return dt.datetime.fromtimestamp(value, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def format_duration(seconds: float | None) -> str:
    """A duration for people: `850 ms`, `12.3 s`, `4 min 05 s`, `2 h 03 min`."""
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def pretty_json(value: Any) -> str:
    """Indented JSON for display (escaped by autoescape like any other text); sealed secret
    values show as `***`."""
    return json.dumps(hidden(value), indent=2, sort_keys=False, default=str, ensure_ascii=False)


def state_class(state: object) -> Markup:
    """The CSS class of a run or job state: `state-succeeded`."""
    text = str(getattr(state, "value", state) or "unknown").lower()
    return Markup("state-") + "".join(c for c in text if c.isalnum() or c == "-")
