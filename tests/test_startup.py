"""What a command loads, and what it says when an optional driver is not installed.

Each case runs the command line in a fresh interpreter: one that records which libraries it
imported, or one where the drivers of an extra cannot be imported (as after a plain
`pip install baseshift`), to check the message names the `pip install` command."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

DRIVERS = {"sqlalchemy", "sqlmodel", "psycopg", "grpc", "grpc_tools", "kubernetes", "pymongo",
           "redis", "graphql", "uvloop"}
"""Libraries no command may load unless it uses the backend or executor that needs them."""

# Runs `baseshift ARGS` after making the modules in $BLOCK unimportable (as if not installed);
# prints the top-level modules it loaded, as JSON, on the last line of stderr.
DRIVER = """
import importlib.abc, json, os, sys

blocked = set(filter(None, os.environ.get("BLOCK", "").split(",")))

class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NotInstalled())
from baseshift.core.app.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
sys.stdout.flush()
print("\\n" + json.dumps(sorted({m.split(".")[0] for m in sys.modules})), file=sys.stderr)
sys.exit(code)
"""


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str
    loaded: frozenset[str]


def baseshift(tmp_path: Path, *args: str, block: tuple[str, ...] = (),
              env: dict[str, str] | None = None) -> Outcome:
    full_env = {**os.environ, "BLOCK": ",".join(block),
                "BASESHIFT_DATA_DIR": str(tmp_path / "data"), **(env or {})}
    proc = subprocess.run([sys.executable, "-c", DRIVER, *args], cwd=tmp_path, env=full_env,
                          capture_output=True, text=True, timeout=120)
    err, _, last = proc.stderr.rstrip().rpartition("\n")
    return Outcome(proc.returncode, proc.stdout, err, frozenset(json.loads(last)))


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_version_loads_no_plugin_and_no_driver(tmp_path: Path) -> None:
    result = baseshift(tmp_path, "--version")
    assert result.code == 0 and result.out.startswith("baseshift ")
    assert not result.loaded & (DRIVERS | {"starlette", "jinja2", "httpx", "lark", "pluggy"})


def test_check_loads_no_database_and_no_remote_driver(tmp_path: Path) -> None:
    result = baseshift(tmp_path, "check", str(REPO / "workflows"))
    assert result.code == 0, result.err
    assert "ok" in result.out
    assert not result.loaded & (DRIVERS | {"httpx", "lark"}), "a file without syntax errors " \
        "is read by the fast parser; databases and remote executors are not needed to check"


def test_a_syntax_error_is_reported_by_lark_without_a_cache(tmp_path: Path) -> None:
    bad = write(tmp_path, "bad.bsw", 'workflow w {\n  version "1.0.0"\n  job a uses shell {\n')
    temp = tmp_path / "tmp"
    temp.mkdir()
    result = baseshift(tmp_path, "check", str(bad), env={"TMPDIR": str(temp)})
    assert result.code == 1
    assert "bad.bsw:3:" in result.err and "error[dsl.syntax]" in result.err
    assert "lark" in result.loaded
    assert not list(temp.iterdir()), "the parser is built, never loaded from a cache file"


def test_the_plain_install_runs_a_workflow_on_sqlite(tmp_path: Path) -> None:
    flow = write(tmp_path, "w.bsw", 'workflow w {\n  version "1.0.0"\n'
                 '  job a uses shell { with { command: "echo hi" } }\n}\n')
    everything_optional = ("psycopg", "redis", "pymongo", "kubernetes", "grpc", "grpc_tools",
                           "google", "graphql", "uvloop")
    result = baseshift(tmp_path, "run", str(flow), block=everything_optional)
    assert result.code == 0, result.err
    assert "COMPLETED" in result.out
    assert "sqlalchemy" in result.loaded and not result.loaded & set(everything_optional)
    # no HTTP client: the alerts' webhook, the load balancer's probes and the OpenID client
    # import theirs when they send (about 0.1 s of every command's start)
    assert not result.loaded & {"httpx", "joserfc"}


def test_a_new_data_folder_is_private(tmp_path: Path) -> None:
    """The data folder holds the database (accounts, the audit trail, sealed secrets) and
    the key file: made by Base Shift, only its owner may enter it."""
    flow = write(tmp_path, "w.bsw", 'workflow w {\n  version "1.0.0"\n'
                 '  job a uses shell { with { command: "echo hi" } }\n}\n')
    result = baseshift(tmp_path, "run", str(flow))
    assert result.code == 0, result.err
    assert (tmp_path / "data").stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize("setting, value, extra", [
    ("BASESHIFT_STORE", "postgres", "postgres"),
    ("BASESHIFT_TEMPLATES", "postgres", "postgres"),
    ("BASESHIFT_TEMPLATES", "mongo", "mongo"),
    ("BASESHIFT_CACHE", "redis", "redis"),
    ("BASESHIFT_LIVE", "redis", "redis"),
])
def test_a_backend_whose_extra_is_missing_names_the_install_command(
        tmp_path: Path, setting: str, value: str, extra: str) -> None:
    drivers = {"postgres": ("psycopg",), "mongo": ("pymongo",), "redis": ("redis",)}[extra]
    result = baseshift(tmp_path, "runs", block=drivers, env={
        setting: value, "BASESHIFT_DATABASE_URL": "postgresql://127.0.0.1:1/none",
        "BASESHIFT_REDIS_URL": "redis://127.0.0.1:1/0",
        "BASESHIFT_MONGO_URL": "mongodb://127.0.0.1:1/none"})
    assert result.code == 2, result.err
    assert f"needs {drivers[0]}, which is not installed" in result.err
    assert f"pip install 'baseshift[{extra}]'" in result.err
    assert "Traceback" not in result.err


def test_the_worker_without_the_postgres_extra_names_the_install_command(
        tmp_path: Path) -> None:
    result = baseshift(tmp_path, "worker", block=("psycopg",), env={
        "BASESHIFT_STORE": "postgres", "BASESHIFT_DATABASE_URL": "postgresql://127.0.0.1:1/x"})
    assert result.code == 2
    assert "pip install 'baseshift[postgres]'" in result.err and "Traceback" not in result.err


@pytest.mark.parametrize("executor, with_block, extra, driver", [
    ("kubernetes", '{ image: "alpine", command: ["true"] }', "kubernetes", "kubernetes"),
    ("grpc", '{ target: "127.0.0.1:1", executor: "shell" }', "grpc", "grpc"),
])
def test_an_executor_whose_extra_is_missing_fails_the_check(
        tmp_path: Path, executor: str, with_block: str, extra: str, driver: str) -> None:
    flow = write(tmp_path, "w.bsw", f'workflow w {{\n  version "1.0.0"\n'
                 f'  job a uses {executor} {{ with {with_block} }}\n}}\n')
    result = baseshift(tmp_path, "check", str(flow), block=(driver,))
    assert result.code == 1
    assert "w.bsw:3:" in result.err and "error[dsl.missing-extra]" in result.err
    assert f"job 'a' uses {executor}, which needs {driver}" in result.err
    assert f"pip install 'baseshift[{extra}]'" in result.err


def test_the_same_workflow_checks_when_the_extra_is_installed(tmp_path: Path) -> None:
    flow = write(tmp_path, "w.bsw", 'workflow w {\n  version "1.0.0"\n  job a uses kubernetes '
                 '{ with { image: "alpine", command: ["true"] } }\n}\n')
    result = baseshift(tmp_path, "check", str(flow))
    assert result.code == 0, result.err
    assert "kubernetes" not in result.loaded, "checking needs the schema, not the client"
