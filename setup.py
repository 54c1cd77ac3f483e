"""Build hook for the one optional C accelerator (`fairtune.augment._derange`); everything else is in pyproject.toml.

`optional=True`: without a C compiler the install still succeeds and fairtune uses the pure-Python derangement,
which gives the same output (tests compare the two).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("fairtune.augment._derange", ["fairtune/augment/_derange.c"], optional=True),
    ]
)
