"""Build hook for the optional compiled parts; everything else is in pyproject.toml.

- `fairtune.augment._speedups` (C): the Mersenne Twister derangement and the match split of the swapping engine.
- `fairtune.augment._engine_c`: `fairtune/augment/_engine.py` itself compiled by Cython (the same code, faster). The
  copy that is compiled records the SHA-256 of the source it came from, so `fairtune.augment.swapper` can tell a
  stale build (an edited editable install) and run the Python file instead.

Both are optional: without a C compiler or Cython the install still succeeds and fairtune runs the pure-Python code,
which gives the same output (the tests compare the two).
"""

import hashlib
import os
from pathlib import Path

from setuptools import Extension, setup

ROOT = Path(__file__).resolve().parent
ENGINE = Path("fairtune") / "augment" / "_engine.py"


def compiled_engine() -> list[Extension]:
    """The Cython extension of the engine, or nothing when Cython is missing or fails (the Python file runs)."""
    if os.environ.get("FAIRTUNE_NO_EXTENSIONS"):
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        print("fairtune: Cython not found, the swapping engine stays pure Python (same output, slower)")
        return []
    source = (ROOT / ENGINE).read_bytes()
    copy = Path("build") / "cython" / "fairtune" / "augment" / "_engine_c.py"
    copy.parent.mkdir(parents=True, exist_ok=True)
    text = source + f'\n_SOURCE_SHA256 = "{hashlib.sha256(source).hexdigest()}"\n'.encode()
    if not copy.exists() or copy.read_bytes() != text:  # unchanged: keep its mtime, so Cython skips the work
        copy.write_bytes(text)
    ext = Extension("fairtune.augment._engine_c", [str(copy)], optional=True)
    try:
        return cythonize(
            [ext],
            compiler_directives={"language_level": "3", "binding": True},
            quiet=True,
        )
    except Exception as exc:  # noqa: BLE001 - any Cython failure leaves the Python engine, which is complete
        print(f"fairtune: compiling the swapping engine with Cython failed ({exc}); it stays pure Python")
        return []


extensions = [Extension("fairtune.augment._speedups", ["fairtune/augment/_speedups.c"], optional=True)]
for ext in compiled_engine():
    ext.optional = True  # cythonize() returns new Extension objects, without the flag
    extensions.append(ext)

setup(ext_modules=extensions)
