"""Run by tests/test_train.py under torchrun: 2 gloo processes train a tiny hider for 4 steps."""

import sys
from pathlib import Path

import torch
import torch.distributed as dist
from helpers import images

from invhide import InvertibleHider
from invhide.nn import subnets
from invhide.testing import randomize_
from invhide.training import TrainConfig, Trainer
from invhide.training.losses import HidingLoss

out = Path(sys.argv[1])
memory_saving = sys.argv[2] == "memory_saving"
model = randomize_(InvertibleHider(num_blocks=2, subnet=subnets.conv(hidden=8, depth=2)), seed=0, gain=0.05)
if int(__import__("os").environ["RANK"]) == 0:
    torch.save(model.state_dict(), out / "start.pt")
data = [images(i, 3, 16, 16) for i in range(8)]
settings = TrainConfig(
    steps=4, batch_size=2, crop=16, lr=1e-3, log_every=1, val_every=0, checkpoint_every=2, tensorboard=False
)
trainer = Trainer(model, HidingLoss.paper(reduction="mean"), data, settings, out_dir=out / "run", progress=False)
trainer.fit()
torch.save(model.state_dict(), out / f"rank{trainer.rank}.pt")
dist.barrier()
dist.destroy_process_group()
