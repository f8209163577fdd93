"""VAE Explorer's model core: data, model, loss, training, diagnostics, latent space,
generation and checkpoints. It never imports gradio (the UI lives in ``vae_explorer.ui``)."""

from .build import build_model
from .checkpoint import Checkpoint, load_checkpoint, save_checkpoint, shipped_checkpoints
from .config import ModelConfig, RunInfo, TrainConfig
from .data import ImageDataset, load_dataset
from .evaluate import EvalResult, evaluate
from .hierarchical import HierarchicalVAE
from .loss import LossTerms, elbo_loss, iwae_nll, vae_loss
from .model import VAE, LatentModel, VAEOutput
from .records import EpochRecord, StepRecord, StopRecord
from .trainer import Trainer

__version__ = "0.1.0"

__all__ = [
    "VAE",
    "Checkpoint",
    "EpochRecord",
    "EvalResult",
    "HierarchicalVAE",
    "ImageDataset",
    "LatentModel",
    "LossTerms",
    "ModelConfig",
    "RunInfo",
    "StepRecord",
    "StopRecord",
    "TrainConfig",
    "Trainer",
    "VAEOutput",
    "build_model",
    "elbo_loss",
    "evaluate",
    "iwae_nll",
    "load_checkpoint",
    "load_dataset",
    "save_checkpoint",
    "shipped_checkpoints",
    "vae_loss",
]
