"""tests/requirements.lock, the locked test toolchain, covers pyproject.toml: every dependency
of the package and of each extra (through `baseshift[...]` self references) is pinned to one
exact version that the pyproject's range admits, for Python 3.11 on Linux, as the README's
test command (tests/run) and CI install it. See docs/development.md."""
from __future__ import annotations

import os
import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parent.parent
LOCK = REPO / "tests" / "requirements.lock"
REFRESH = "tests/run --refresh-lock"
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
SELF = canonicalize_name(PROJECT["name"])
TARGET = {"sys_platform": "linux", "platform_system": "Linux", "os_name": "posix",
          "platform_machine": "x86_64", "implementation_name": "cpython",
          "platform_python_implementation": "CPython",
          "python_version": "3.11", "python_full_version": "3.11.0"}
"""The environment the lock is resolved for (uv's --python-version 3.11 means 3.11.0)."""


def _applies(req: Requirement, extra: str = "") -> bool:
    return req.marker is None or req.marker.evaluate({**TARGET, "extra": extra})


def _lock_lines() -> list[str]:
    """The lock's requirement lines, with backslash continuations (hashes) joined."""
    text = LOCK.read_text().replace("\\\n", " ")
    return [line.strip() for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def _pins() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for line in _lock_lines():
        req = Requirement(line.split(" --hash", 1)[0])
        [spec] = req.specifier
        pins[canonicalize_name(req.name)] = Version(spec.version)
    return pins


def _project_requirements() -> list[tuple[str, Requirement]]:
    """(where, requirement) for the dependencies and every extra, self references expanded."""
    extras: dict[str, list[str]] = PROJECT.get("optional-dependencies", {})
    found: list[tuple[str, Requirement]] = []
    seen: set[str] = set()

    def add(where: str, lines: list[str], extra: str) -> None:
        for line in lines:
            req = Requirement(line)
            if not _applies(req, extra):
                continue
            if canonicalize_name(req.name) == SELF:
                for name in sorted(req.extras):
                    assert name in extras, f"{where} names {PROJECT['name']}[{name}]: no such extra"
                    if name not in seen:
                        seen.add(name)
                        add(f"[{name}]", extras[name], name)
            else:
                found.append((where, req))

    add("dependencies", PROJECT["dependencies"], "")
    for name in extras:  # every extra, bench included: the lock is for all of them
        if name not in seen:
            seen.add(name)
            add(f"[{name}]", extras[name], name)
    return found


def test_every_lock_line_is_one_exact_pin_with_hashes() -> None:
    lines = _lock_lines()
    assert len(lines) > 50
    for line in lines:
        req = Requirement(line.split(" --hash", 1)[0])
        specs = list(req.specifier)
        assert len(specs) == 1 and specs[0].operator == "==" and "*" not in specs[0].version, (
            f"{LOCK.name}: {line.split(' ')[0]!r} is not an exact == pin; refresh it: {REFRESH}")
        assert req.marker is None and not req.url, line
        assert re.search(r"--hash=sha256:[0-9a-f]{64}", line), f"no hash for {req.name}"
    assert SELF not in _pins(), "the lock pins the project itself"


def test_the_lock_covers_every_dependency_of_pyproject() -> None:
    pins = _pins()
    problems = []
    for where, req in _project_requirements():
        name = canonicalize_name(req.name)
        if name not in pins:
            problems.append(f"{req} (pyproject {where}) is not in {LOCK.name}")
        elif not req.specifier.contains(pins[name], prereleases=True):
            problems.append(f"{req} (pyproject {where}): {LOCK.name} pins {name}=={pins[name]}")
    assert not problems, "\n".join(problems + [f"refresh the lock: {REFRESH}"])


def test_packaging_and_the_build_backend_are_locked() -> None:
    """This module needs packaging; tests/run builds the editable install without isolation,
    so the lock's setuptools must satisfy the build-system requirement."""
    pins = _pins()
    assert "packaging" in pins
    build = tomllib.loads((REPO / "pyproject.toml").read_text())["build-system"]["requires"]
    for line in build:
        req = Requirement(line)
        name = canonicalize_name(req.name)
        assert name in pins and req.specifier.contains(pins[name]), (
            f"build-system needs {req}; {LOCK.name} has {pins.get(name)}; {REFRESH}")


def test_the_lock_is_closed_and_has_no_stale_pins() -> None:
    """Following the installed packages' own requirements from pyproject reaches exactly the
    locked set: nothing missing (pip would refuse a hashed install), nothing left over."""
    pins = _pins()
    installed = {}
    for name in pins:
        try:
            installed[name] = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
    off = [n for n, v in pins.items() if n not in installed or Version(installed[n].version) != v]
    assert not off, (f"this environment is not the lock's ({', '.join(sorted(off)[:5])}…): "
                     "run the suite with tests/run, which installs the lock")
    reached: set[str] = set()
    expanded: set[tuple[str, str]] = set()
    todo = [req for _, req in _project_requirements()]
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        assert name in pins, f"{req} is needed but not in {LOCK.name}; {REFRESH}"
        reached.add(name)
        for extra in {"", *req.extras}:
            if (name, extra) not in expanded:
                expanded.add((name, extra))
                deps = [Requirement(line) for line in installed[name].requires or []]
                todo += [dep for dep in deps if _applies(dep, extra)]
    stale = sorted(set(pins) - reached)
    assert not stale, f"{LOCK.name} pins {', '.join(stale)}, which nothing needs; {REFRESH}"


def test_the_readme_and_ci_run_the_same_test_command() -> None:
    for script in ("tests/run", ".ci/run"):
        path = REPO / script
        assert os.access(path, os.X_OK), f"{script} is not executable"
        assert path.read_text().startswith("#!/usr/bin/env bash\n"), script
    assert re.search(r"^exec tests/run$", (REPO / ".ci" / "run").read_text(), re.MULTILINE)
    readme = (REPO / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", quick, re.DOTALL)
    assert len(blocks) == 2 and blocks[1].strip() == "tests/run", blocks


def test_the_refresh_command_is_the_one_in_the_lock_header() -> None:
    assert f"#    {REFRESH}\n" in LOCK.read_text()
