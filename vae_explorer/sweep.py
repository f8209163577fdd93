"""A β sweep on the rate–distortion plane (Alemi et al. 2018, "Fixing a Broken ELBO").

K one-level VAEs that differ only in β — the same data, seed, initial weights, batches, noise
and steps — are trained at once: their parameters are stacked along a first dimension of size K
(``torch.func.stack_module_state``) and one step of all K is one pass — batched matrix products
for the MLP (stacked.py), ``torch.func.vmap`` over the module for other architectures — and one
backward of the sum of their objectives. Each model's objective is

    D + β_k · R,   D = E_q[−log p(x|z)] (distortion),   R = KL(q(z|x) ‖ p(z)) (rate),

so the gradient of their sum is each model's own gradient; each is clipped to the run's norm by
itself, and Adam, which works element by element, updates the stack as K Adams would. After
every quarter epoch the sweep measures (R, D) of each model on test images: points that move on
the plane while they train, a low β towards low distortion and high rate, a high β the other way.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from . import stacked
from .build import build_model
from .config import ModelConfig, TrainConfig
from .dataset import ImageDataset
from .distributions import DiagonalGaussian
from .information import information_split
from .loss import elbo_loss
from .model import VAE
from .outputs import VAEOutput

Terms = tuple[torch.Tensor, torch.Tensor, DiagonalGaussian]  # D (K,), R (K,), q (K, B, D)
DEFAULT_BETAS = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
MAX_MODELS = 12
# K models × batch size rows go through each stacked step at once: the bound keeps a sweep's
# activations within a few hundred MB of the shared server's memory (784-1024 MLP, fp32).
MAX_STACKED_ROWS = 8192
EVAL_IMAGES = 1000  # test images each (R, D) point is measured on
UPDATES_PER_EPOCH = 4  # how often the points move


@dataclass(frozen=True)
class RDPoint:
    """One model's place on the plane, nats per image on the test images."""

    beta: float  # the weight of its KL term
    rate: float  # R = KL(q(z|x) ‖ p(z))
    distortion: float  # D = E_q[−log p(x|z)], one sampled z per image (seeded)
    mutual_info: float  # I(x; z) ≤ R: the part of the rate that tells the images apart


@dataclass(frozen=True)
class SweepRecord:
    """The sweep's models after ``step`` optimiser steps."""

    epoch: float  # epochs done (fractions between whole epochs)
    step: int  # optimiser steps each model has taken
    points: list[RDPoint]  # one per β, in the sweep's order
    seconds: float  # training time so far (evaluations excluded)
    diverged: list[bool]  # per model: a non-finite step was refused (its weights kept)


class _Reparameterized(nn.Module):
    """A VAE whose noise is an input, so that one ε serves every stacked model: x (B, C, H, W),
    eps (B, D) → decoder output (B, C, H, W), μ and log σ² (B, D)."""

    def __init__(self, vae: VAE) -> None:
        super().__init__()
        self.vae = vae

    def forward(self, x: torch.Tensor, eps: torch.Tensor):
        q = self.vae.encode(x)
        return self.vae.decode(q.reparameterize(eps)), q.mean, q.logvar


def check_betas(betas) -> list[float]:
    """The β values of a sweep: 1 to MAX_MODELS finite numbers > 0, no two the same."""
    values = [float(b) for b in betas]
    if not 1 <= len(values) <= MAX_MODELS:
        raise ValueError(f"a sweep takes 1 to {MAX_MODELS} β values, got {len(values)}.")
    if not all(math.isfinite(b) and 0 < b <= 100 for b in values):
        raise ValueError("every β of a sweep must be a number above 0 and at most 100.")
    if len(set(values)) != len(values):
        raise ValueError("the β values of a sweep must differ.")
    return values


class BetaSweep:
    """K = len(betas) copies of the model ``config`` describes, trained with ``train``'s data
    order, learning rate, batch size, epochs, clip and seed; β constant per model (no schedule,
    no free bits: the sweep is about β alone)."""

    def __init__(
        self,
        config: ModelConfig,
        train: TrainConfig,
        data: ImageDataset,
        betas=DEFAULT_BETAS,
        device: torch.device | str = "cpu",
    ) -> None:
        if config.arch == "hierarchical" or config.autoencoder or config.conditional:
            raise ValueError("a β sweep trains one-level, unconditional VAEs (mlp or conv).")
        self.betas = check_betas(betas)
        if len(self.betas) * train.batch_size > MAX_STACKED_ROWS:
            raise ValueError(
                f"a sweep of {len(self.betas)} models with batches of {train.batch_size} is too large "
                f"here: models × batch size may be at most {MAX_STACKED_ROWS:,} (fewer β values or a "
                "smaller batch)."
            )
        self.config, self.train, self.data, self.device = config, train, data, torch.device(device)
        template = build_model(config, train.seed, self.device)  # every model starts from these weights
        models = [copy.deepcopy(template) for _ in self.betas]
        params, self.buffers = stack_module_state(models)  # (K, …) each
        self.params = {k: v.detach().clone().requires_grad_(True) for k, v in params.items()}
        self._base = _Reparameterized(copy.deepcopy(template).to("meta"))
        self._beta = torch.tensor(self.betas, device=self.device)  # (K,)
        self._vmapped = vmap(self._terms, in_dims=(0, 0, 0, None, None))  # (loss, (D, R)), each (K,)
        # One fused kernel for the whole stack (the same update as K Adams, element by element):
        # at K × the parameters, the per-tensor loops of the default implementation cost more.
        self.opt = torch.optim.Adam(list(self.params.values()), lr=train.lr, fused=self.device.type != "mps")
        self.step = 0
        self.epochs_done = 0  # whole epochs finished
        self.records: list[SweepRecord] = []  # every record run() yielded: the models' paths
        self.diverged = [False] * len(self.betas)
        n_eval = min(EVAL_IMAGES, len(data.x_test))
        self._x_eval = data.x_test[:n_eval]
        gen = torch.Generator().manual_seed(train.seed + 10_000)
        self._eps_eval = torch.randn(n_eval, config.latent_dim, generator=gen)

    # -- one model's objective, vectorised over the stack by vmap (architectures stacked.py lacks) -
    def _terms(self, params: dict, buffers: dict, beta: torch.Tensor, x: torch.Tensor, eps: torch.Tensor):
        """(loss, (D, R)) of one model on a batch (loss.elbo_loss with this model's β):
        loss = D + β·R, nats per image. Its gradient w.r.t. ``params`` is this model's step."""
        state = {**params, **buffers}
        recon, mean, logvar = functional_call(self._base, {f"vae.{k}": v for k, v in state.items()}, (x, eps))
        out = VAEOutput(recon, DiagonalGaussian(mean, logvar), mean)
        terms = elbo_loss(x, out, self.config.likelihood, beta, 0.0, state["x_logvar"])
        return terms.loss, (terms.recon, terms.kl, mean, logvar)

    def _batch_terms(self, x: torch.Tensor, eps: torch.Tensor) -> Terms:
        """D and R of every model on one batch, (K,) each, with gradients to the stack, and the
        posteriors (K, B, D): the MLP through batched matrix products (stacked.py), other
        architectures through vmap."""
        if stacked.supports(self.config):
            return stacked.stacked_terms(self.params, self.buffers["x_logvar"][0], self.config, x, eps)
        _, (d, r, mean, logvar) = self._vmapped(self.params, self.buffers, self._beta, x, eps)
        return d, r, DiagonalGaussian(mean, logvar)

    @torch.no_grad()
    def evaluate(self) -> list[RDPoint]:
        """(R, D) of every model on the first EVAL_IMAGES test images, with fixed noise, and how
        much of R is information about the input (I(x; z), information.py)."""
        rec, kl = torch.zeros(len(self.betas)), torch.zeros(len(self.betas))
        means, logvars = [], []
        for i in range(0, len(self._x_eval), 500):
            x = self._x_eval[i : i + 500].to(self.device)
            eps = self._eps_eval[i : i + 500].to(self.device)
            d, r, q = self._batch_terms(x, eps)
            rec += d.cpu() * len(x)
            kl += r.cpu() * len(x)
            means.append(q.mean.cpu())
            logvars.append(q.logvar.cpu())
        n = len(self._x_eval)
        mean, logvar = torch.cat(means, dim=1), torch.cat(logvars, dim=1)  # (K, n, D)
        gen = torch.Generator().manual_seed(self.train.seed)
        info = [
            information_split(DiagonalGaussian(m, lv), generator=gen).mutual_info
            for m, lv in zip(mean, logvar, strict=True)
        ]
        return [
            RDPoint(b, float(r / n), float(d / n), i)
            for b, r, d, i in zip(self.betas, kl, rec, info, strict=True)
        ]

    def run(self) -> Iterator[SweepRecord]:
        """Train every model for ``train.epochs`` epochs, yielding a record before the first step
        and UPDATES_PER_EPOCH times an epoch. Batches follow the Trainer's seeding (one
        permutation per epoch from seed + epoch); ε is shared by the models, per batch."""
        cfg, n = self.train, len(self.data.x_train)
        per_epoch = math.ceil(n / cfg.batch_size)
        marks = {round(per_epoch * j / UPDATES_PER_EPOCH) for j in range(1, UPDATES_PER_EPOCH + 1)}
        clip = cfg.grad_clip if cfg.grad_clip > 0 else math.inf
        seconds = 0.0
        first = SweepRecord(0.0, self.step, self.evaluate(), seconds, list(self.diverged))
        self.records.append(first)
        yield first
        for epoch in range(cfg.epochs):
            perm = torch.randperm(n, generator=torch.Generator().manual_seed(cfg.seed + epoch))
            eps_gen = torch.Generator().manual_seed(cfg.seed + 1 + epoch)
            t0 = time.perf_counter()
            for b in range(per_epoch):
                idx = perm[b * cfg.batch_size : (b + 1) * cfg.batch_size]
                x = self.data.x_train[idx].to(self.device)
                eps = torch.randn(len(idx), self.config.latent_dim, generator=eps_gen).to(self.device)
                for p in self.params.values():
                    p.grad = None
                d, r, _ = self._batch_terms(x, eps)
                (d + self._beta * r).sum().backward()  # each model's loss D + β·R has its own weights
                self._apply({name: p.grad for name, p in self.params.items()}, clip)
                if b + 1 in marks:
                    seconds += time.perf_counter() - t0
                    done = epoch + (b + 1) / per_epoch
                    self.epochs_done = int(done)
                    rec = SweepRecord(done, self.step, self.evaluate(), seconds, list(self.diverged))
                    self.records.append(rec)
                    yield rec
                    t0 = time.perf_counter()

    @torch.no_grad()
    def _apply(self, grads: dict[str, torch.Tensor], clip: float) -> None:
        """One Adam step of the stack: each model's gradient clipped to ``clip`` by its own norm
        (as Trainer does); a model whose gradient is not finite keeps its weights."""
        flat = [g.flatten(1) for g in grads.values()]  # (K, n) views
        norm = torch.stack([torch.linalg.vector_norm(g, dim=1) for g in flat]).norm(dim=0)  # (K,)
        ok = torch.isfinite(norm)
        bad = [k for k, good in enumerate(ok.tolist()) if not good]
        kept = {name: p[bad].clone() for name, p in self.params.items()} if bad else {}
        scale = torch.where(norm > clip, clip / (norm + 1e-6), torch.ones_like(norm))
        scale = torch.where(ok, scale, torch.zeros_like(norm))  # a bad model's step is undone below
        rescale = bool((scale < 1).any())
        for name, p in self.params.items():
            g = grads[name]
            if bad:
                torch.nan_to_num_(g, nan=0.0, posinf=0.0, neginf=0.0)
            if rescale:
                g.mul_(scale.view(-1, *([1] * (p.dim() - 1))))
            p.grad = g
        self.opt.step()
        for name, old in kept.items():
            self.params[name][bad] = old
        for k in bad:
            self.diverged[k] = True
        self.step += 1

    def model(self, k: int) -> VAE:
        """Model k of the sweep as a VAE of its own (a copy: the sweep goes on unchanged)."""
        if not 0 <= k < len(self.betas):
            raise ValueError(f"the sweep has models 0 to {len(self.betas) - 1}.")
        vae = build_model(self.config, self.train.seed, self.device)
        state = {name: t[k].detach().clone() for name, t in {**self.params, **self.buffers}.items()}
        vae.load_state_dict(state)
        return vae

    def distortion_floor(self) -> float | None:
        """The least distortion any decoder can reach on the evaluated images, nats: a perfect
        reconstruction still pays Σ_i H(x_i) under the Bernoulli likelihood (a grey pixel is a
        coin flip), and ½ Σ_i log 2πσ² under a Gaussian of fixed σ; None when σ is learned."""
        x = self._x_eval.double().flatten(1)
        if self.config.likelihood == "bernoulli":
            p = x.clamp(1e-12, 1 - 1e-12)
            h = -(x * p.log() + (1 - x) * (1 - p).log())
            return float(h.sum(dim=1).mean())
        if self.config.gaussian_variance == "fixed":
            return 0.5 * x.shape[1] * (math.log(2 * math.pi) + 2 * math.log(self.config.gaussian_std))
        return None
