"""Options of the shared training engine (every family's ``train`` section starts from them)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from matchforge.limits import Workers
from matchforge.options import Options


class Engine(Options):
    """How the shared training engine (matchforge.training.engine, Lightning) runs a job: devices, precision,
    checkpoints by time, loggers (docs/training.md). Every family's training options include these."""

    accelerator: Literal['auto', 'cpu', 'gpu', 'cuda'] = Field('auto', description='auto = GPU when available')
    devices: int | str = Field(1,
        description="GPUs per node (DDP when > 1 or num_nodes > 1); -1 = all. Ignored on a machine without GPU unless "
                    "accelerator: cpu is explicit (then DDP over CPU processes)")
    num_nodes: Workers = Field(1, ge=1, description='nodes (SLURM)')
    strategy: str = Field('auto',
        description="Lightning strategy (ddp, ddp_find_unused_parameters_true, ...); auto picks DDP for several GPUs")
    precision: Literal['32-true', '16-mixed', 'bf16-mixed', '64-true'] = Field('32-true',
        description="Lightning precision; bf16-mixed also runs on CPU")
    gradient_clip_val: float | None = Field(None, ge=0, description='clip the gradient norm (null = off)')
    deterministic: bool | Literal['warn'] = Field('warn',
        description="Lightning's deterministic mode (torch.use_deterministic_algorithms): warn = deterministic "
                    "algorithms where PyTorch has them and a warning where it has none, true = fail there, false = off "
                    "(faster cuDNN choices on GPU). Workers and every sampler are seeded either way")
    checkpoint_minutes: float = Field(10, gt=0,
        description="write the resume checkpoint (checkpoints/last.ckpt) every this many minutes of training; always on "
                    "SIGTERM/SIGINT/SIGUSR1")
    logger: Literal['csv', 'tensorboard', 'wandb'] = Field('csv',
        description="training curves: csv only (feeds curve.png and the report), or also TensorBoard (logs/ under the run, "
                    "pip install matchforge[tensorboard]) or Weights & Biases (project matchforge, run name; "
                    "WANDB_MODE=offline works offline; pip install matchforge[wandb])")
