"""The optional C part of the hot path (`cogmora.engine._quiet`); everything else about
the package is in pyproject.toml.

`optional=True`: where the extension cannot be built (no compiler, no Python headers, as
in deploy/Dockerfile's slim image) setuptools warns and installs the package without it,
and `engine/prefilter.py` runs its Python loop. An editable install (`pip install -e .`)
builds it in place, next to the source.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "cogmora.engine._quiet",
            ["src/cogmora/engine/_quiet.c"],
            optional=True,
        )
    ]
)
