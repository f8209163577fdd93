"""Command line: ``python -m vae_explorer train|evaluate|sample`` (also ``vae-explorer``).

Bad arguments or files end with exit status 2 and one readable line, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
from collections.abc import Sequence

import torch

from . import distributed
from .build import build_model
from .checkpoint import load_checkpoint, save_checkpoint
from .config import ModelConfig
from .data import binarize, load_dataset
from .device import amp_dtype, configure_threads, select_device
from .evaluate import evaluate
from .generate import sample_prior, save_png, to_grid
from .records import EpochRecord, StepRecord, StopRecord
from .settings import add_flags, parse_all
from .trainer import TEST_BINARIZE_SEED, Trainer


class UsageError(Exception):
    """A bad command line; reported on one line with exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line instead of argparse's usage block
        raise UsageError(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="vae-explorer", description="Train, evaluate and sample variational autoencoders.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser("train", help="train a VAE and save it as .safetensors")
    add_flags(t)  # every Train setting, from the one table (settings.py)
    t.add_argument("--data-dir", default=None)
    t.add_argument("--no-download", action="store_true", help="never download a data set")
    t.add_argument("--resume", default=None, metavar="CKPT", help="continue from a checkpoint")
    t.add_argument("--out", required=True, metavar="PATH.safetensors")
    t.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    t.add_argument("--json", action="store_true", help="one JSON object per epoch on stdout")
    t.add_argument("--amp", action="store_true", help="bfloat16 mixed precision (a GPU only)")

    e = sub.add_parser("evaluate", help="test negative ELBO, KL, active units, IWAE -log p(x)")
    e.add_argument("checkpoint")
    e.add_argument("--dataset", default=None, help="default: the one the model was trained on")
    e.add_argument("--iwae-k", type=int, default=0, help="importance samples (0: off)")
    e.add_argument("--batch-size", type=int, default=256)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--data-dir", default=None)
    e.add_argument("--no-download", action="store_true")
    e.add_argument("--device", default=None)
    e.add_argument("--json", action="store_true")

    s = sub.add_parser("sample", help="decode prior samples into a PNG grid")
    s.add_argument("checkpoint")
    s.add_argument("--n", type=int, default=64)
    s.add_argument("--label", type=int, default=None)
    s.add_argument("--temperature", type=float, default=1.0)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--scale", type=int, default=4, help="enlarge each pixel this many times")
    s.add_argument("--out", required=True, metavar="grid.png")
    return p


def _fmt(x: float) -> str:
    return f"{x:.2f}" if math.isfinite(x) else str(x)


def cmd_train(a: argparse.Namespace) -> int:
    parsed = parse_all(vars(a))  # the same checks as the app's, on the same ranges
    if not a.out.endswith(".safetensors"):
        raise ValueError("--out must name a .safetensors file.")
    # Under torchrun: this process's place among the others, and its own GPU if there are GPUs.
    rank, device = distributed.setup(a.device)
    try:
        return _train(a, parsed, rank, device)
    finally:
        distributed.teardown()


def _train(a: argparse.Namespace, parsed, rank: distributed.Rank | None, device: torch.device) -> int:
    tcfg = parsed.train
    amp = amp_dtype(device, a.amp)
    main = rank is None or rank.is_main  # only rank 0 prints, shows progress and saves
    with rank.main_first() if rank else contextlib.nullcontext():  # one download, not N
        data = load_dataset(parsed.dataset, a.data_dir, download=not a.no_download)
    if a.resume:
        ck = load_checkpoint(a.resume, device)
        model, state = ck.model, ck.run
        trainer = Trainer(
            model,
            data,
            tcfg,
            epoch=state.epoch,
            step=state.step,
            history=state.history,
            optimizer_state=ck.optimizer_state,
            rank=rank,
            amp=amp,
        )
    else:
        mcfg = ModelConfig(input_shape=data.image_shape, num_classes=data.num_classes, **parsed.model)
        trainer = Trainer(build_model(mcfg, a.seed, device), data, tcfg, rank=rank, amp=amp)
    show_bar = main and not a.json and sys.stderr.isatty()
    bar = None
    if show_bar:
        from tqdm import tqdm

        steps = math.ceil(len(data.x_train) / tcfg.batch_size) * tcfg.epochs
        bar = tqdm(total=steps, unit="step", dynamic_ncols=True)
    status = 0
    try:
        for rec in trainer.run():
            if isinstance(rec, StepRecord) and bar is not None:
                bar.update(1)
                bar.set_postfix_str(
                    f"epoch {rec.epoch + 1} loss {_fmt(rec.loss)} KL {_fmt(rec.kl)} β {rec.beta:.2f}"
                )
            elif isinstance(rec, EpochRecord) and main:
                line = {k: v for k, v in rec.to_dict().items() if k != "kl_per_dim"}
                if a.json:
                    print(json.dumps(line), flush=True)
                else:
                    msg = (
                        f"epoch {rec.epoch}: train {_fmt(rec.train_loss)} (recon {_fmt(rec.train_recon)}, "
                        f"KL {_fmt(rec.train_kl)}, β {rec.beta:.2f})  test {_fmt(rec.test_loss)} nats  "
                        f"active units {rec.active_units}  {rec.images_per_s:,.0f} img/s"
                    )
                    if len(rec.test_kl_levels) > 1:
                        msg += "  test KL z1, z2 " + ", ".join(_fmt(v) for v in rec.test_kl_levels)
                    (bar.write if bar else print)(msg)
            elif isinstance(rec, StopRecord):  # every process stops at the same step
                if main:
                    print(f"vae-explorer: training stopped: {rec.reason}", file=sys.stderr)
                status = 1
    except KeyboardInterrupt:
        # The trainer stops between steps, so the model is consistent: keep what was learned.
        if main:
            print("vae-explorer: interrupted; saving the model as it is.", file=sys.stderr)
        status = 130
    finally:
        if bar is not None:
            bar.close()
    if not main:
        return status
    save_checkpoint(
        a.out,
        trainer.model,
        trainer.run_info(),
        trainer.optimizer,
        metrics=trainer.history[-1].to_dict() if trainer.history else {},
    )
    if not a.json:
        print(f"saved {a.out}")
    return status


def cmd_evaluate(a: argparse.Namespace) -> int:
    device = select_device(a.device)
    ck = load_checkpoint(a.checkpoint, device)
    data = load_dataset(a.dataset or ck.run.dataset, a.data_dir, download=not a.no_download)
    if data.image_shape != ck.model.config.input_shape:
        raise ValueError(
            f"the model expects images of shape {ck.model.config.input_shape}, "
            f"but {data.name} has {data.image_shape}."
        )
    x = data.x_test
    if ck.run.train.binarize:
        x = binarize(x, torch.Generator().manual_seed(TEST_BINARIZE_SEED))
    res = evaluate(ck.model, x, data.y_test, batch_size=a.batch_size, seed=a.seed, iwae_k=a.iwae_k)
    out = res.to_dict()
    if not a.iwae_k:
        out.pop("iwae_nll")
    if a.json:
        print(json.dumps(out))
    else:
        print(f"{data.name} test set, {res.n} images (nats per image)")
        if ck.model.config.autoencoder:
            print(f"  reconstruction {res.recon:.2f}  (an autoencoder has no KL term and no ELBO)")
        else:
            print(f"  negative ELBO  {res.neg_elbo:.2f}  (reconstruction {res.recon:.2f} + KL {res.kl:.2f})")
        if len(res.kl_levels) > 1:
            print("  KL per level   " + ", ".join(f"z{i + 1} {v:.2f}" for i, v in enumerate(res.kl_levels)))
        if res.iwae_nll is not None:
            print(f"  IWAE -log p(x) {res.iwae_nll:.2f}  (K = {a.iwae_k})")
        print(f"  active units   {res.active_units} of {len(res.kl_per_dim)}")
        for line in res.diagnosis.findings:
            print(f"  note: {line}")
    return 0


def cmd_sample(a: argparse.Namespace) -> int:
    if not 1 <= a.scale <= 32:
        raise ValueError("--scale must be from 1 to 32.")
    ck = load_checkpoint(a.checkpoint)
    images = sample_prior(ck.model, a.n, a.temperature, a.seed, a.label)
    save_png(to_grid(images, nrow=max(1, math.ceil(math.sqrt(a.n)))), a.out, scale=a.scale)
    print(f"saved {a.out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
        configure_threads(distributed.local_world_size())  # torchrun's processes share the cores
        return {"train": cmd_train, "evaluate": cmd_evaluate, "sample": cmd_sample}[args.command](args)
    except (UsageError, ValueError) as err:
        print(f"vae-explorer: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        where = f": {err.filename}" if err.filename else ""
        print(f"vae-explorer: error: {err.strerror or err}{where}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
