"""Training: the hiding losses, the trainer, the named recipes and the refiner's training."""

from invhide.training import losses, recipes, refine, trainer
from invhide.training.config import TrainConfig
from invhide.training.losses import HidingLoss
from invhide.training.recipes import recipe, train_and_evaluate
from invhide.training.trainer import Trainer, TrainResult

__all__ = [
    "HidingLoss",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "losses",
    "recipe",
    "recipes",
    "refine",
    "train_and_evaluate",
    "trainer",
]
