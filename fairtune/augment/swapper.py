"""The span-aware swapping engine (text -> counterfactual text and character-offset edits): its public face.

The code is `fairtune/augment/_engine.py` (how it works is in its docstring). When fairtune is built with a C
compiler, `setup.py` also compiles that same file with Cython into `fairtune.augment._engine_c`, which runs the same
code faster; this module takes the compiled copy when it was built from the `_engine.py` beside it, and the Python
file otherwise (no compiler, `FAIRTUNE_NO_EXTENSIONS=1`, or a source edited since the build, with a warning). Both
give the same output (the tests run both). `FAIRTUNE_NO_EXTENSIONS=1` also turns off the C accelerators
(`_speedups`), so it runs what an install without a C compiler runs. Patch `engine`, the module in use, not this one.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import warnings
from pathlib import Path
from types import ModuleType

_SOURCE = Path(__file__).with_name("_engine.py")
_PUBLIC_CLASSES = ("Edit", "SwapResult", "GroupPermutation", "ExampleState", "Swapper")


def source_digest(path: Path = _SOURCE) -> str:
    """SHA-256 of the engine's source file, which the compiled copy records when it is built."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def select_engine(compiled: ModuleType | None, source: Path = _SOURCE) -> tuple[ModuleType, str]:
    """The engine module to run and why: the compiled copy when it was built from `source` as it is now.

    A stale copy (the source was edited after the build, as in an editable install) would run old code, so the
    Python engine runs instead, with a warning that names the fix.
    """
    if os.environ.get("FAIRTUNE_NO_EXTENSIONS"):
        return _python_engine(), "FAIRTUNE_NO_EXTENSIONS is set"
    if compiled is None:
        return _python_engine(), "the compiled engine is not built (no C compiler or Cython at install time)"
    built_from = getattr(compiled, "_SOURCE_SHA256", None)
    if source.is_file() and built_from != source_digest(source):  # no source beside it (stripped install): trust it
        warnings.warn(
            f"{source} changed after fairtune.augment._engine_c was compiled from it: using the Python engine "
            "(same output, slower). Fix: rebuild it with `pip install -e .` (or `make install`).",
            RuntimeWarning,
            stacklevel=2,
        )
        return _python_engine(), "the compiled engine is stale"
    return compiled, "compiled"


def _python_engine() -> ModuleType:
    return importlib.import_module("fairtune.augment._engine")


def _import_compiled() -> ModuleType | None:
    try:
        return importlib.import_module("fairtune.augment._engine_c")
    except ImportError:
        return None


engine, engine_reason = select_engine(None if os.environ.get("FAIRTUNE_NO_EXTENSIONS") else _import_compiled())

# Every name of the engine, private ones too (neutral.py and the tests use some), read from here.
globals().update({k: v for k, v in vars(engine).items() if not (k.startswith("__") and k.endswith("__"))})
for _name in _PUBLIC_CLASSES:  # pickles name this module, whichever engine made the object
    getattr(engine, _name).__module__ = __name__
del _name
