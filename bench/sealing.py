"""Sealing throughput: what encrypting stored secrets costs (the builtin `keys` plugin).

    python bench/sealing.py --values 20000 --store sqlite

Seals and then opens `--values` distinct values through the application's sealer (AES-256-GCM
under a data key wrapped by the local key file's key-encryption key), then opens them again
from a fresh application (every data key unwrapped once more, as after a restart). Prints one
JSON object: values per second and microseconds per value for each phase.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

from baseshift.core.app.application import BaseShift
from baseshift.core.settings import Settings


async def measure(values: int, store: str, data_dir: Path) -> dict[str, object]:
    texts = [f"token-{i:08d}-{'x' * 24}" for i in range(values)]
    settings = Settings(store=store, data_dir=data_dir, load_entrypoints=False)
    async with BaseShift(settings) as bs:
        sealer = bs.hooks.sealer()
        began = time.perf_counter()
        sealed = [await sealer.seal(text) for text in texts]
        seal_s = time.perf_counter() - began
        began = time.perf_counter()
        opened = [await sealer.unseal(token) for token in sealed]
        open_s = time.perf_counter() - began
    assert opened == texts
    async with BaseShift(settings) as bs:
        sealer = bs.hooks.sealer()
        began = time.perf_counter()
        reopened = [await sealer.unseal(token) for token in sealed]
        cold_s = time.perf_counter() - began
    assert reopened == texts
    return {"benchmark": "sealing", "store": store, "values": values,
            **_phase("seal", values, seal_s), **_phase("unseal", values, open_s),
            **_phase("unseal_after_restart", values, cold_s)}


def _phase(name: str, values: int, seconds: float) -> dict[str, float]:
    return {f"{name}_per_s": round(values / seconds),
            f"{name}_us": round(seconds / values * 1e6, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--values", type=int, default=20000, help="values to seal (20000)")
    parser.add_argument("--store", default="sqlite", choices=("memory", "sqlite"),
                        help="state store holding the wrapped data keys (sqlite)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        print(json.dumps(asyncio.run(measure(args.values, args.store, Path(folder)))))


if __name__ == "__main__":
    main()
