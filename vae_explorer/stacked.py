"""K MLP VAEs as one: their forward pass as batched matrix products over stacked weights.

The β sweep (sweep.py) trains K models of one configuration at once. For the MLP architecture
(model._mlp_encoder, model._mlp_decoder: Linear → ReLU → Linear each way) the K forward passes
are written here directly as ``baddbmm`` over weights stacked to (K, out, in) — the same layers,
named as in the VAE's state dict, about 25% faster per step on the CPU than vmap over the
module (measured in bench/bench_sweep.py; tests/test_sweep.py checks the models it trains
against the same models trained one by one). Other architectures go through vmap.
"""

from __future__ import annotations

import torch

from .config import ModelConfig
from .distributions import DiagonalGaussian
from .loss import recon_nll


def supports(config: ModelConfig) -> bool:
    """The stacked path covers the unconditional MLP VAE with a Bernoulli or fixed-σ likelihood
    (a learned σ differs per model; a conditional model has labels to join)."""
    fixed = config.likelihood == "bernoulli" or config.gaussian_variance == "fixed"
    return config.arch == "mlp" and not config.conditional and not config.autoencoder and fixed


def _linear(params: dict[str, torch.Tensor], name: str, inp: torch.Tensor) -> torch.Tensor:
    """Layer ``name`` of all K models: inp (K, B, I), or (B, I) shared by the models → (K, B, O)."""
    w, b = params[f"{name}.weight"], params[f"{name}.bias"]  # (K, O, I), (K, O)
    if inp.dim() == 2:
        inp = inp.expand(w.shape[0], *inp.shape)
    return torch.baddbmm(b.unsqueeze(1), inp, w.transpose(1, 2))


def stacked_terms(
    params: dict[str, torch.Tensor],
    x_logvar: torch.Tensor,
    config: ModelConfig,
    x: torch.Tensor,
    eps: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, DiagonalGaussian]:
    """Distortion D = E_q[−log p(x|z)] and rate R = KL(q(z|x) ‖ N(0, I)) of each of the K models on
    one batch x (B, C, H, W) with the shared noise eps (B, D), batch means: (K,) each, with
    gradients to ``params``; and the posteriors q, (K, B, D). ``x_logvar`` (C·H·W,) is the
    likelihood's log σ² (fixed: one for all)."""
    h = _linear(params, "encoder.0", x.flatten(1)).relu()  # (K, B, H)
    mean, logvar = _linear(params, "encoder.2", h).chunk(2, dim=2)  # (K, B, D) each
    if config.clamp_logvar:
        logvar = logvar.clamp(config.logvar_min, config.logvar_max)  # as VAE._gaussian
    q = DiagonalGaussian(mean, logvar)
    z = q.reparameterize(eps)  # (K, B, D): the same ε for every model
    out = _linear(params, "decoder.2", _linear(params, "decoder.0", z).relu())  # (K, B, C·H·W)
    k, b = out.shape[:2]
    xs = x.expand(k, *x.shape).reshape(k * b, *x.shape[1:])
    nll = recon_nll(xs, out.reshape(k * b, *x.shape[1:]), config.likelihood, x_logvar)  # (K·B,)
    return nll.view(k, b).mean(dim=1), q.kl().sum(dim=2).mean(dim=1), q
