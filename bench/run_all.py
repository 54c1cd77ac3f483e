"""`make bench`: every benchmark in bench/, each printing its table with a baseline measured in the same run."""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

BENCHES = ("bench_trainer", "bench_augment", "bench_crows", "bench_tasks", "bench_lora", "bench_frontier")


def main() -> int:
    here = Path(__file__).resolve().parent
    only = sys.argv[1:]
    failed = []
    for name in BENCHES:
        if only and name not in only:
            continue
        path = here / f"{name}.py"
        if not path.is_file():
            continue
        print(f"\n{'=' * 100}\n{name}\n{'=' * 100}", flush=True)
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        start = time.perf_counter()
        try:
            module.main([]) if module.main.__code__.co_argcount else module.main()
        except Exception as err:  # keep going: one broken benchmark must not hide the others
            failed.append(name)
            print(f"{name} failed: {err!r}")
        print(f"({name}: {time.perf_counter() - start:.0f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
