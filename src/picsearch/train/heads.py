"""Projection heads (PyTorch): base encoder features into the joint space.

As in the dual-encoder recipe: a dense layer to the embedding size, then
residual blocks of GELU -> dense -> dropout -> add -> LayerNorm, and the
output L2-normalised. Inputs are L2-normalised first, so the heads accept the
base encoders' raw outputs as well as normalised ones.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional

__all__ = ["ProjectionHead", "DualHeads", "state_to_numpy", "numpy_to_state"]


class _Block(nn.Module):
    def __init__(self, dim: int, dropout: float) -> None:
        super().__init__()
        self.dense = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x + self.dropout(self.dense(functional.gelu(x))))


class ProjectionHead(nn.Module):
    """``in_dim`` features to ``dim``-d unit vectors."""

    def __init__(self, in_dim: int, dim: int, *, blocks: int = 1, dropout: float = 0.1) -> None:
        super().__init__()
        self.project = nn.Linear(in_dim, dim)
        self.blocks = nn.ModuleList(_Block(dim, dropout) for _ in range(blocks))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = self.project(functional.normalize(features, dim=-1))
        for block in self.blocks:
            x = block(x)
        return functional.normalize(x, dim=-1)


class DualHeads(nn.Module):
    """A text head, an image head and the learnable temperature (as a log scale)."""

    def __init__(
        self,
        *,
        text_dim: int,
        image_dim: int,
        dim: int,
        blocks: int = 1,
        dropout: float = 0.1,
        temperature: float = 0.07,
    ) -> None:
        super().__init__()
        self.text = ProjectionHead(text_dim, dim, blocks=blocks, dropout=dropout)
        self.image = ProjectionHead(image_dim, dim, blocks=blocks, dropout=dropout)
        self.log_scale = nn.Parameter(torch.tensor(math.log(1.0 / temperature)))

    def scale(self) -> torch.Tensor:
        """1 / temperature, capped at 100 as in CLIP."""
        return self.log_scale.exp().clamp(max=100.0)


def state_to_numpy(heads: DualHeads) -> dict[str, np.ndarray]:
    """The weights as float32 numpy arrays, by parameter name."""
    return {
        name: tensor.detach().cpu().float().numpy().copy()
        for name, tensor in heads.state_dict().items()
    }


def numpy_to_state(heads: DualHeads, weights: dict[str, np.ndarray]) -> None:
    heads.load_state_dict({name: torch.from_numpy(np.array(w)) for name, w in weights.items()})
