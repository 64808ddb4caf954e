"""Parse and check a generated workflow of N jobs; prints one JSON object.

    python bench/parse.py --jobs 10000

Each job `needs` an earlier one and has a small `with` block with an interpolation, so the
checker's dependency, upstream and type checks all have work to do.
"""
from __future__ import annotations

import argparse
import gc
import json
import time


def generate(n: int) -> str:
    lines = ['workflow big {', '  version "1.0.0"', '  input { name: string = "x" }']
    for i in range(n):
        needs = f"needs j{(i - 1) // 2}  " if i else ""
        lines.append(f'  job j{i} uses shell {{ {needs}with {{ command: "echo {i} '
                     '${input.name}", env: { N: "' + str(i) + '" } } }')
    lines.append("}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs; the best is reported")
    args = parser.parse_args()

    from baseshift.core.app.application import BaseShift
    from baseshift.core.settings import Settings
    from baseshift.dsl import compile_source

    env = BaseShift(Settings(store="memory", load_entrypoints=False)).check_env()
    source = generate(args.jobs)
    compile_source('workflow w {\n  version "1.0.0"\n}\n', "warm.bsw", env)  # builds parsers
    timings = []
    for _ in range(args.repeat):
        compiled = None  # each run starts without the previous result alive
        gc.collect()
        started = time.perf_counter()
        compiled = compile_source(source, "big.bsw", env)
        timings.append(time.perf_counter() - started)
    assert compiled is not None and compiled.ok and compiled.plan is not None
    print(json.dumps({"benchmark": "parse", "jobs": len(compiled.plan.jobs),
                      "bytes": len(source.encode()), "seconds": round(min(timings), 4),
                      "all_seconds": [round(t, 4) for t in timings]}))


if __name__ == "__main__":
    main()
