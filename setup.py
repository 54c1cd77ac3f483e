"""Build hook for the optional C accelerators (`fairtune.augment._speedups`); everything else is in pyproject.toml.

`optional=True`: without a C compiler the install still succeeds and fairtune uses its pure-Python twins,
which give the same output (tests compare the two).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("fairtune.augment._speedups", ["fairtune/augment/_speedups.c"], optional=True),
    ]
)
