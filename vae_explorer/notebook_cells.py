"""The exported notebook's steps (notebook.py fills them in): for each, the markdown that
explains it to a student and its code, as ``string.Template`` text whose ``$names`` stand for the
session's values. Kept apart from the code that writes the notebook, so each reads as it is."""

PER_CLASS = " Each column is one class: the label picks the content, z the style."

# (markdown explaining the step, its code as a string.Template: $names are filled in per spec)
STEPS: list[tuple[str, str]] = [
    (
        """## 1. Imports
The VAE Explorer library does the work: the same functions the app calls.""",
        """import numpy as np
import plotly.graph_objects as go
import torch
from PIL import Image

from vae_explorer.build import build_model
from vae_explorer.checkpoint import save_checkpoint
from vae_explorer.config import ModelConfig, TrainConfig
from vae_explorer.data import load_dataset
from vae_explorer.evaluate import encode_all, evaluate
from vae_explorer.generate import reconstruct, sample_prior, to_grid
from vae_explorer.latent import project
from vae_explorer.limits import limit_data
from vae_explorer.records import EpochRecord, StopRecord
from vae_explorer.trainer import Trainer""",
    ),
    (
        """## 2. The data set
Images become float tensors `(N, C, H, W)` in [0, 1], split into a training and a test set
exactly as in the app.""",
        """$load
print(f"{data.name}: {len(data.x_train)} training and {len(data.x_test)} test images "
      f"of shape {data.image_shape}, classes {data.class_names}")""",
    ),
    (
        """## 3. The model and its settings
Every setting is written out: change one and run the notebook again. `build_model` seeds the
initial weights with the run's seed (without touching the global random state), as the app does;
`torch.manual_seed` alone would not give the same weights.""",
        """model_config = $model_config
train_config = $train_config
model = build_model(model_config, seed=train_config.seed)
model""",
    ),
    (
        """## 4. Training
The trainer yields a record per optimiser step and one per epoch; we keep the epoch records
(their test −ELBO is measured with a seeded z and β = 1). Change `EPOCHS` to train longer.""",
        """EPOCHS = $epochs  # epochs the app had trained
trainer = Trainer(model, data, train_config)
records: list[EpochRecord] = []
for rec in trainer.run(epochs=EPOCHS):
    if isinstance(rec, EpochRecord):
        records.append(rec)
        print(f"epoch {rec.epoch:3d}  test −ELBO {rec.test_loss:9.4f}  "
              f"recon {rec.test_recon:9.4f}  KL {rec.test_kl:8.4f}  ({rec.seconds:.1f} s)")
    elif isinstance(rec, StopRecord):
        print(rec.reason)
        break
if not records:
    print("No epochs trained: the model is as initialised.")""",
    ),
    (
        """## 5. Does it match the app?
The test negative ELBO in nats per image (lower is better), beside the value the app showed.
The same seeds give the same number, up to rounding.""",
        """APP_TEST_LOSS = $app_loss  # the app's last test −ELBO (None: untrained)
if records:
    test_loss = records[-1].test_loss
else:  # the measurement the trainer makes at the end of every epoch
    test_loss = evaluate(model, trainer.x_test, trainer.y_test, seed=train_config.seed).neg_elbo
print(f"test −ELBO here:   {test_loss:.4f} nats/image")
if APP_TEST_LOSS is not None:
    print(f"test −ELBO in app: {APP_TEST_LOSS:.4f} nats/image "
          f"(difference {test_loss - APP_TEST_LOSS:+.2e})")""",
    ),
    (
        """## 6. Training curves
Test −ELBO and its two parts per epoch: reconstruction (how well x comes back) and KL (how far
q(z|x) is from the prior). The training −ELBO is dotted: a widening gap between it and the test
curve means overfitting.""",
        """CURVES = {"test −ELBO": "test_loss", "test reconstruction": "test_recon", "test KL": "test_kl",
          "train −ELBO": "train_neg_elbo"}
if records:
    fig = go.Figure(layout_title="Training curves", layout_xaxis_title="epoch",
                    layout_yaxis_title="nats per image")
    for name, key in CURVES.items():
        fig.add_scatter(x=[r.epoch for r in records], y=[getattr(r, key) for r in records], name=name,
                        mode="lines+markers", line_dash="dot" if key.startswith("train") else "solid")
    fig.show()
else:
    print("Untrained: there are no curves yet.")""",
    ),
    (
        """## 7. The latent map
Where the encoder puts the first test images: their posterior means μ. A 2-D latent is drawn as
it is; a larger one is projected onto its first two principal components (PCA). The colours are
the classes, which the model never saw (unless it is conditional).""",
        """n_map = min($map_points, len(data.x_test))
x_map, y_map = data.x_test[:n_map], data.y_test[:n_map]
q = encode_all(model, x_map, y_map if model_config.conditional else None)
mu = q.mean.numpy()
if mu.shape[1] == 2:
    xy, axes = mu, ("z₁", "z₂")
elif mu.shape[1] > 2:
    xy, axes = project(mu, "pca", seed=0).coords, ("PC 1", "PC 2")
else:  # a 1-D latent: points on a line
    xy, axes = np.c_[mu[:, 0], np.zeros(len(mu))], ("z₁", "")
labels = y_map.numpy() if data.has_labels else np.zeros(n_map, dtype=int)
fig = go.Figure(layout_title="Test images in the latent space", layout_xaxis_title=axes[0],
                layout_yaxis_title=axes[1])
for k in np.unique(labels):  # one colour per class
    name = data.class_names[k] if data.has_labels else "test images"
    fig.add_scatter(x=xy[labels == k, 0], y=xy[labels == k, 1], mode="markers", marker_size=4, name=name)
fig.show()""",
    ),
    (
        """## 8. Samples from the prior
Draw z ~ N(0, I) and decode it: new images, if the KL term has shaped the codes to the prior.$per_class""",
        """SCALE = max(2, 64 // data.image_shape[1])  # enlarge small images, with crisp pixels


def enlarge(grid: np.ndarray) -> Image.Image:
    img = Image.fromarray(grid)
    return img.resize((img.width * SCALE, img.height * SCALE), Image.NEAREST)


samples = sample_prior(model, n=$n_samples, temperature=1.0, seed=0)
enlarge(to_grid(samples, nrow=$nrow))""",
    ),
    (
        """## 9. Reconstructions
Top: the first test images; below them, what comes back through the encoder's mean μ and the
decoder.""",
        """x, y = data.x_test[:$recon_images], data.y_test[:$recon_images]
enlarge(to_grid(torch.cat([x, reconstruct(model, x, y)]), nrow=len(x)))""",
    ),
    (
        """## 10. Save a checkpoint
A `.safetensors` file next to this notebook with the weights, Adam's state and the run's history:
load it in the app to explore this model there.""",
        """CHECKPOINT = $checkpoint
metrics = records[-1].to_dict() if records else {}
path = save_checkpoint(CHECKPOINT, model, trainer.run_info(), trainer.optimizer, metrics=metrics)
print(f"saved {path.resolve()}")""",
    ),
]
