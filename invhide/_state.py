"""Shared by every loader: how tensors differ from a state dict, and building objects from their configs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from torch import Tensor

__all__ = ["build_from_config", "state_mismatches"]

T = TypeVar("T")


def state_mismatches(expected: Mapping[str, Tensor], given: Mapping[str, Tensor]) -> list[str]:
    """Missing, unexpected and wrongly shaped tensors, each kind as one phrase with examples.

    Example:
        >>> model = {"a": torch.zeros(2), "b": torch.zeros(1)}
        >>> for problem in state_mismatches(model, {"a": torch.zeros(3), "c": torch.zeros(1)}):
        ...     print(problem)
        missing 1 tensor(s), e.g. ['b']
        1 unexpected tensor(s), e.g. ['c']
        1 with the wrong shape, e.g. ['a (3,), model (2,)']
    """
    missing = sorted(set(expected) - set(given))
    unexpected = sorted(set(given) - set(expected))
    wrong = [
        f"{key} {tuple(given[key].shape)}, model {tuple(value.shape)}"
        for key, value in expected.items()
        if key in given and given[key].shape != value.shape
    ]
    problems = []
    if missing:
        problems.append(f"missing {len(missing)} tensor(s), e.g. {missing[:3]}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected tensor(s), e.g. {unexpected[:3]}")
    if wrong:
        problems.append(f"{len(wrong)} with the wrong shape, e.g. {wrong[:3]}")
    return problems


def build_from_config(cls: type[T], config: Mapping[str, Any], **extra: Any) -> T:
    """``cls(**config, **extra)`` for a config written by ``cls.config()``, with clear errors.

    The optional ``"class"`` key must name ``cls``; unknown keys become a
    ``ValueError`` naming the config instead of a ``TypeError``.

    Example:
        >>> build_from_config(dict, {"class": "dict", "a": 1})
        {'a': 1}
    """
    options = dict(config)
    name = options.pop("class", cls.__name__)
    if name != cls.__name__:
        raise ValueError(f"config describes a {name}, not a {cls.__name__}")
    try:
        return cls(**options, **extra)
    except TypeError as error:
        raise ValueError(f"invalid {cls.__name__} config {options!r}: {error}") from error
