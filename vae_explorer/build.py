"""Building a model from its config: the one place that knows every architecture."""

from __future__ import annotations

import threading

import torch

from .config import ModelConfig
from .hierarchical import HierarchicalVAE
from .model import VAE, LatentModel

_BUILD_LOCK = threading.Lock()


def build_model(config: ModelConfig, seed: int = 0, device: torch.device | str = "cpu") -> LatentModel:
    """A freshly initialised model of the config's architecture; the seed fixes the weights
    without touching global RNG state."""
    # fork_rng + manual_seed go through the process-wide generator: two sessions building models
    # at the same moment would draw from each other's seeds, so builds take turns.
    with _BUILD_LOCK, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = HierarchicalVAE(config) if config.arch == "hierarchical" else VAE(config)
    return model.to(device)
