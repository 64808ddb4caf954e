"""The JobExecutor gRPC modules, generated from `proto/jobexecution.proto` at first use.

Nothing generated is kept in the repository or written into the package (it may be
read-only): `grpc_tools.protoc` writes into a cache folder named after a hash of the proto
text and of the tool versions, so editing the proto (or upgrading grpcio-tools) generates
fresh code and never reuses stale code. The cache is `$XDG_CACHE_HOME/baseshift/grpc`
(`~/.cache/baseshift/grpc` by default), or a private folder in the temp directory when that
one cannot be written.

Two processes may generate at the same moment: each writes into its own temporary folder and
renames it into place; the first rename wins and the other process uses the winner's copy.
The modules are imported as `baseshift.plugins.grpc.proto.jobexecution_pb2` and `..._pb2_grpc`.
The channel options both ends of the service use are here too, so the `grpc` executor (a
builtin, imported at every start) need not import the server module.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import ModuleType

from baseshift.core.errors import PluginError

PROTO_NAME = "jobexecution.proto"
PACKAGE = "baseshift.plugins.grpc.proto"
"""The package the generated modules are imported under (their `import` lines need it)."""

MESSAGE_LIMIT = 64 * 1024 * 1024
"""Largest request or answer in bytes, both ways (gRPC's default of 4 MiB is too small for
long logs)."""
CHANNEL_OPTIONS = (("grpc.max_send_message_length", MESSAGE_LIMIT),
                   ("grpc.max_receive_message_length", MESSAGE_LIMIT))
"""Options of the worker's server and of the `grpc` executor's channels."""

_SUBDIR = Path(*PACKAGE.split("."))
_TOOLS = ("grpcio-tools", "protobuf")
_lock = threading.Lock()
_loaded: Stubs | None = None


@dataclass(frozen=True, slots=True)
class Stubs:
    """The generated modules: messages (`pb2`) and the service's stub and servicer helpers."""

    pb2: ModuleType
    pb2_grpc: ModuleType


def stubs() -> Stubs:
    """The generated modules for the shipped proto, generated on the first call only."""
    global _loaded
    with _lock:
        if _loaded is None:
            _loaded = load_from(generate(proto_source()))
        return _loaded


def proto_source() -> bytes:
    """The text of the shipped `jobexecution.proto`."""
    return (resources.files("baseshift.plugins.grpc") / "proto" / PROTO_NAME).read_bytes()


def generate(source: bytes, root: Path | None = None) -> Path:
    """The folder of code generated from `source`, generating it unless it is cached.

    `root` is the cache folder (default: `cache_root()`). Raises PluginError when protoc
    rejects the proto or no folder can be written.
    """
    base = _usable(root) if root is not None else cache_root()
    final = base / cache_key(source)
    if (final / _SUBDIR).is_dir():
        return final
    try:
        work = Path(tempfile.mkdtemp(prefix=".tmp-", dir=base))
        try:
            _run_protoc(source, work)
            try:
                os.rename(work, final)
            except OSError:
                if not (final / _SUBDIR).is_dir():  # not a lost race: a real failure
                    raise
        finally:
            shutil.rmtree(work, ignore_errors=True)
    except OSError as exc:
        raise PluginError(f"cannot write generated gRPC code into {base}: {exc}") from exc
    return final


def cache_key(source: bytes) -> str:
    """A hash of the proto text, the package the code is generated into, and the versions
    of the tools that turn it into Python."""
    digest = hashlib.sha256(source)
    digest.update(f"\0{PACKAGE}".encode())
    for name in _TOOLS:
        digest.update(f"\0{name}={importlib.metadata.version(name)}".encode())
    return digest.hexdigest()[:24]


def cache_root() -> Path:
    """`$XDG_CACHE_HOME/baseshift/grpc`, or a private temp folder if it cannot be written."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    preferred = Path(base) / "baseshift" / "grpc"
    try:
        return _usable(preferred)
    except PluginError:
        return _private_temp()


def load_from(folder: Path) -> Stubs:
    """Import the modules generated into `folder` (a result of `generate`)."""
    here = folder / _SUBDIR
    pb2 = _import(f"{PACKAGE}.jobexecution_pb2", here / "jobexecution_pb2.py")
    service = _import(f"{PACKAGE}.jobexecution_pb2_grpc", here / "jobexecution_pb2_grpc.py")
    return Stubs(pb2, service)


def _run_protoc(source: bytes, work: Path) -> None:
    # The proto is placed at baseshift/plugins/grpc/proto/ so the generated grpc module imports
    # the messages module by its package name, not as a top-level `jobexecution_pb2`.
    (work / _SUBDIR).mkdir(parents=True)
    (work / _SUBDIR / PROTO_NAME).write_bytes(source)
    # A child process: protoc prints its errors on the process's own stderr, which we capture.
    done = subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"--proto_path={work}",
         f"--python_out={work}", f"--grpc_python_out={work}", str(_SUBDIR / PROTO_NAME)],
        cwd=work, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise PluginError(f"grpc_tools.protoc could not compile {PROTO_NAME}: "
                          f"{(done.stderr or done.stdout).strip()}")


def _import(name: str, path: Path) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise PluginError(f"cannot import generated gRPC module {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _usable(folder: Path) -> Path:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PluginError(f"cannot create the gRPC code cache {folder}: {exc}") from exc
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PluginError(f"the gRPC code cache {folder} is not writable")
    return folder


def _private_temp() -> Path:
    """A folder in the temp directory that only this user can write: code is imported from
    it, so a folder another user made must not be trusted."""
    folder = Path(tempfile.gettempdir()) / f"baseshift-grpc-{os.getuid()}"
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
    except OSError as exc:
        raise PluginError(f"cannot create the gRPC code cache {folder}: {exc}") from exc
    info = folder.lstat()
    if info.st_uid != os.getuid() or info.st_mode & 0o022 or folder.is_symlink():
        raise PluginError(f"the gRPC code cache {folder} belongs to another user or others "
                          "can write it; set XDG_CACHE_HOME to a folder of yours")
    return folder
