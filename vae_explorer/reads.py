"""What a Workspace can show of its model: decodes, encodings, samples, the test set's
posteriors and their map. Every read holds the model's lock (``ModelLock.reading``), so it sees
the weights between two training steps. A mixin of ``session.Workspace``, which provides the
attributes below."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch

from .dataset import ImageDataset
from .diagnostics import LabelInformation, label_information
from .distributions import DiagonalGaussian
from .evaluate import encode_all
from .gaps import ImageGaps, image_gaps
from .generate import class_grid, decode_z, path, path_labels, reconstruct, sample_prior
from .images import load_image, prepare_drawing
from .information import InformationSplit, information_split
from .latent import Projection, ProjectionCache, nearest_labels, project
from .model import LatentModel
from .model_lock import ModelLock
from .reparam import ReparamDraw, draw
from .true_posterior import PosteriorGrid, posterior_grid


@dataclass(frozen=True)
class TestPosteriors:
    """q(z|x) of the first n test images for one model version: what every map click, traversal
    and projection reads, computed once per version."""

    version: int  # the model version they were computed for
    q: DiagonalGaussian  # (n, D)
    labels: torch.Tensor  # (n,) their classes


@dataclass(frozen=True)
class Encoded:
    """A user's input, prepared like the data set, and what the model makes of it."""

    x: torch.Tensor  # (1, C, H, W) the prepared input in [0, 1]
    q: DiagonalGaussian  # (1, D) its posterior
    recon: torch.Tensor  # (1, C, H, W) the reconstruction (decoded from μ)


@dataclass(frozen=True)
class MapDecode:
    """Places on a 2-D map of the latent space, decoded."""

    z: np.ndarray  # (P, D) the latent points the places map back to
    labels: np.ndarray | None  # (P,) the class each was decoded with (conditional models), else None
    images: torch.Tensor  # (P, C, H, W) in [0, 1]


class Reads:
    """The read-only views of one session's model."""

    model: LatentModel  # the session's model
    data: ImageDataset  # its data set
    guard: ModelLock  # the lock every read holds
    version: int  # the model version (bumps with every change of the weights)
    projections: ProjectionCache  # 2-D maps of the test posteriors, by version
    truths: ProjectionCache  # true-posterior grids, by version, input and extent
    _posteriors: TestPosteriors | None  # the test posteriors of the current version, once computed

    def sample(self, n: int, temperature: float, seed: int, label: int | None = None) -> torch.Tensor:
        with self.guard.reading():
            return sample_prior(self.model, n, temperature, seed, label)

    def sample_by_class(self, per_class: int, temperature: float, seed: int) -> torch.Tensor:
        """A conditional model's rows, one per class, the same z down each column (class_grid)."""
        with self.guard.reading():
            return class_grid(self.model, per_class, temperature, seed)

    def decode(self, z: np.ndarray, label: int | torch.Tensor | None = None) -> torch.Tensor:
        """Decode z (N, D). A conditional model takes ``label``: a class (default 0), one class
        per row (N,), or soft labels (N, K)."""
        arr = np.asarray(z, dtype=np.float32)
        if arr.ndim == 1:
            arr = arr[None]
        if arr.ndim != 2 or arr.shape[1] != self.model.latent_dim:
            raise ValueError(f"z must have {self.model.latent_dim} numbers per point, got shape {arr.shape}.")
        z_t = torch.from_numpy(arr)
        with self.guard.reading():
            y = None
            if self.model.config.conditional:
                if isinstance(label, (torch.Tensor, np.ndarray)):
                    y = torch.as_tensor(label)
                else:
                    y = torch.full((len(z_t),), 0 if label is None else int(label), dtype=torch.long)
            return decode_z(self.model, z_t, y)

    def decode_path(
        self, z0: np.ndarray, z1: np.ndarray, t: torch.Tensor, method: str, labels=(None, None), blend=False
    ) -> torch.Tensor:
        """Decodes at fractions t (K,) of the way from z0 to z1 (linear or slerp); a conditional
        model holds A's label or, with ``blend``, moves from A's to B's along t."""
        z = path(torch.as_tensor(z0), torch.as_tensor(z1), t, method)  # (K, D)
        y = path_labels(*labels, t, self.data.num_classes, blend) if self.model.config.conditional else None
        return self.decode(z.numpy(), y)

    def test_image(self, index: int) -> tuple[torch.Tensor, int, np.ndarray]:
        """Test image ``index``: the image (1, C, H, W), its label and its posterior mean (D,)."""
        if not 0 <= index < len(self.data.x_test):
            raise ValueError(f"the test set has images 0 to {len(self.data.x_test) - 1}.")
        x, y = self.data.x_test[index : index + 1], self.data.y_test[index : index + 1]
        with self.guard.reading():
            q = encode_all(self.model, x, y if self.model.config.conditional else None)
        return x, int(y[0]), q.mean[0].numpy()

    def encode_input(self, x: torch.Tensor) -> Encoded:
        """A prepared input (1, C, H, W): its posterior and its reconstruction. A conditional
        model needs a label to encode: class 0 is used."""
        y = torch.zeros(1, dtype=torch.long) if self.model.config.conditional else None
        with self.guard.reading():
            return Encoded(x, encode_all(self.model, x, y), reconstruct(self.model, x, y))

    def encode_image(self, source) -> Encoded:
        """A user's image file, prepared like the data set (images.load_image), encoded."""
        return self.encode_input(load_image(source, self.model.config.input_shape))

    def encode_drawing(self, array: np.ndarray) -> Encoded:
        """A drawing (H, W[, C]), prepared like the data set (images.prepare_drawing), encoded."""
        return self.encode_input(prepare_drawing(array, self.model.config.input_shape))

    def reparameterize(self, index: int, seed: int, trail: int = 0) -> ReparamDraw:
        """Test image ``index`` through the encoder, and one draw z = μ + σ ⊙ ε with ε from
        ``seed`` (reparam.draw), decoded; plus the z of the ``trail`` draws before it."""
        if not 0 <= index < len(self.data.x_test):
            raise ValueError(f"the test set has images 0 to {len(self.data.x_test) - 1}.")
        x, y = self.data.x_test[index : index + 1], self.data.y_test[index : index + 1]
        with self.guard.reading():
            return draw(self.model, x, y, seed, trail)

    def test_posteriors(self, n: int = 2000) -> TestPosteriors:
        """q(z|x) of the first n test images and their labels, computed once per model version."""
        n = max(1, min(int(n), len(self.data.x_test)))
        with self.guard.reading():
            cached = self._posteriors
            if cached is None or cached.version != self.version or len(cached.q) != n:
                x, y = self.data.x_test[:n], self.data.y_test[:n]
                q = encode_all(self.model, x, y if self.model.config.conditional else None)
                self._posteriors = cached = TestPosteriors(self.version, q, y)
            return cached

    def nearest_test_image(self, z: np.ndarray, n: int = 2000) -> int:
        """The index of the test image (of the first n) whose posterior mean is nearest to z (D,)."""
        mu = self.test_posteriors(n).q.mean
        zz = torch.as_tensor(np.asarray(z, dtype=np.float32)).reshape(1, -1)
        if zz.shape[1] != mu.shape[1] or not torch.isfinite(zz).all():
            raise ValueError(f"z must be {mu.shape[1]} finite numbers.")
        return int(((mu - zz) ** 2).sum(dim=1).argmin())

    def kl_per_dim(self, n: int = 2000) -> np.ndarray:
        """Mean KL of each latent dimension over (up to n) test images, nats. (D,)"""
        return self.test_posteriors(n).q.kl().mean(dim=0).numpy()

    def label_information(self, n: int = 2000) -> LabelInformation:
        """I(μ_d; label) per dimension and the MIG on (up to n) test images."""
        if not self.data.has_labels:
            raise ValueError(f"{self.data.name} has no labels to measure against.")
        tp = self.test_posteriors(n)
        return label_information(tp.q.mean, tp.labels)

    def information(self, n: int = 2000, seed: int = 0) -> InformationSplit:
        """The KL of the first n test posteriors split into I(x; z) and KL(q(z) ‖ p(z))
        (information.py), seeded."""
        if self.model.config.autoencoder:
            raise ValueError("an autoencoder's codes are points: the information split needs a VAE.")
        q = self.test_posteriors(n).q
        return information_split(q, generator=torch.Generator().manual_seed(seed))

    def image_gaps(self, x: torch.Tensor, label: int | None, k: int, steps: int, seed: int) -> ImageGaps:
        """The encoder's, the optimised and the IWAE bound of one input x (1, C, H, W) (gaps.py)."""
        y = None if label is None else torch.tensor([int(label)])
        with self.guard.reading():
            return image_gaps(self.model, x, y, k=k, steps=steps, seed=seed)

    def true_posterior(
        self, x: torch.Tensor, label: int | None, extent: tuple[float, ...], resolution: int
    ) -> PosteriorGrid:
        """p(z|x) of one input (1, C, H, W) on a grid over extent (true_posterior.py), cached per
        model version, input and grid: a map redrawn with the same input does not decode again."""
        digest = hashlib.sha256(x.detach().float().cpu().numpy().tobytes()).hexdigest()
        key = (self.version, digest, label, tuple(round(float(v), 6) for v in extent), resolution)
        y = None if label is None else torch.tensor([int(label)])

        def compute() -> PosteriorGrid:
            with self.guard.reading():
                return posterior_grid(self.model, x, y, extent, resolution)

        return self.truths.get(key, compute)

    def test_index(self, label: int, k: int, limit: int = 200) -> int:
        """The test-set index of the k-th test image of class ``label`` (among the first ``limit``)."""
        indices = self.class_indices(label, limit)
        if not 0 <= k < len(indices):
            raise ValueError(
                f"the test set has only {len(indices)} images of class {self.data.class_names[label]}."
            )
        return indices[k]

    def class_indices(self, label: int, limit: int = 200) -> list[int]:
        """Indices of test images of one class (the first ``limit``)."""
        return torch.nonzero(self.data.y_test == label).flatten()[:limit].tolist()

    def reconstructions(self, n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
        """The first n test images and their reconstructions (decoded from μ)."""
        x, y = self.data.x_test[:n], self.data.y_test[:n]
        with self.guard.reading():
            return x, reconstruct(self.model, x, y)

    def projection(self, method: str, n_points: int = 2000, seed: int = 0) -> tuple[Projection, torch.Tensor]:
        """2-D projection of the test set's μ (cached per model version) and the labels."""
        tp = self.test_posteriors(n_points)
        key = (tp.version, method, len(tp.q), seed)
        return self.projections.get(key, lambda: project(tp.q.mean, method, seed)), tp.labels

    def decode_at(self, method: str, n_points: int, points: np.ndarray) -> MapDecode:
        """Places (P, 2) on the map of ``method`` over the first n test images, decoded: each maps
        back to a z (Projection.to_latent); a conditional model decodes each with the class of
        the nearest mapped point (the colour the student sees there)."""
        proj, labels = self.projection(method, n_points)
        z = proj.to_latent(points)  # (P, D)
        near = nearest_labels(proj, labels.numpy(), points) if self.model.config.conditional else None
        return MapDecode(z, near, self.decode(z, None if near is None else torch.from_numpy(near)))

    def weights_hash(self) -> str:
        """SHA-256 of the weights (names and bytes): which model a session holds, comparably."""
        h = hashlib.sha256()
        with self.guard.reading():
            for k, v in sorted(self.model.state_dict().items()):
                h.update(k.encode())
                h.update(v.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()
