"""CI runs every optional extra: a test that skips for a missing extra would hide it there.

``.ci/run`` sets ``SUPERPOSE_REQUIRE_EXTRAS=1``; there a missing torch, onnx, onnxruntime or
dask is a failure, not a skip. Elsewhere (a plain ``pip install -e .``) this test does nothing.
"""

from __future__ import annotations

import importlib
import os

import pytest

EXTRAS = ("torch", "onnx", "onnxruntime", "dask", "distributed")


@pytest.mark.parametrize("name", EXTRAS)
def test_extra_is_installed_where_required(name):
    if os.environ.get("SUPERPOSE_REQUIRE_EXTRAS") != "1":
        return
    importlib.import_module(name)
