"""Builds the optional C listener of the embedded UDP tracker (holdfast.swarm._udpfast).

Everything else is declared in pyproject.toml. `optional=True`: without a C compiler
the build goes on and the tracker runs its pure-Python path. For development:
`python setup.py build_ext --inplace`.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "holdfast.swarm._udpfast",
            ["holdfast/swarm/_udpfast.c"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
            optional=True,
        )
    ]
)
