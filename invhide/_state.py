"""How a set of tensors differs from a model's state dict, in words (shared by every loader)."""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor

__all__ = ["state_mismatches"]


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
