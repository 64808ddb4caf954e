"""Names a package exports from its submodules, imported on first use (PEP 562).

A public module (`baseshift.core`, `baseshift.web`) lists its names once per submodule;
importing the package then costs nothing until a plugin asks for a name."""
from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any


def lazy_exports(namespace: MutableMapping[str, Any], modules: Mapping[str, tuple[str, ...]]
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module `__getattr__` and `__dir__` of the package whose globals are `namespace`:
    `modules` maps each submodule (or a module by its full name, `baseshift....`) to the names
    taken from it."""
    package = namespace["__name__"]
    where = {name: module for module, names in modules.items() for name in names}

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        full = module if module.startswith("baseshift.") else f"{package}.{module}"
        value = getattr(importlib.import_module(full), name)
        namespace[name] = value  # later lookups do not come back here
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *where})

    return __getattr__, __dir__
