"""Names every doctest in the package can use without importing them."""

import pytest
import torch

import invhide


@pytest.fixture(autouse=True)
def _doctest_namespace(doctest_namespace: dict) -> None:
    doctest_namespace["torch"] = torch
    doctest_namespace["invhide"] = invhide
