"""Training on several processes: each takes its shard of the global batch, and the shards'
losses, gradients and noise add up to exactly what one process computes on the whole batch.

The maths is checked in-process: the shards run in threads whose "all-reduce" is a real
rendezvous (a barrier and a sum), so the loss sees the same collective semantics as under
gloo. The real thing, torchrun with two processes, is in tests/test_torchrun.py.
"""

from __future__ import annotations

import threading

import pytest
import torch
import torch.distributed as dist

from vae_explorer import cli
from vae_explorer.build import build_model
from vae_explorer.config import ModelConfig, TrainConfig
from vae_explorer.device import amp_dtype, configure_threads
from vae_explorer.distributed import BatchShard, Rank, ShardedNoise, local_world_size
from vae_explorer.distributions import DiagonalGaussian
from vae_explorer.loss import elbo_loss
from vae_explorer.records import EpochRecord
from vae_explorer.trainer import Trainer


@pytest.mark.parametrize("world", [1, 2, 3, 5])
@pytest.mark.parametrize("rows", [0, 1, 2, 7, 16, 129])
def test_shards_cover_the_batch_in_order_like_tensor_split(world, rows):
    shards = [Rank(r, world, r).shard(rows) for r in range(world)]
    assert [s.lo for s in shards] == [0] + [s.hi for s in shards[:-1]]
    assert shards[-1].hi == rows and all(s.rows == rows for s in shards)
    expected = [len(part) for part in torch.tensor_split(torch.arange(rows), world)]
    assert [s.hi - s.lo for s in shards] == expected


def test_sharded_noise_is_the_global_draw_cut_into_rows():
    q = DiagonalGaussian(torch.randn(10, 3), torch.randn(10, 3) * 0.1)
    whole = q.sample(torch.Generator().manual_seed(4))
    parts = []
    for r in range(3):
        shard = Rank(r, 3, r).shard(10)
        noise = ShardedNoise(torch.Generator().manual_seed(4), shard)
        parts.append(q[shard.lo : shard.hi].sample(noise))
    assert torch.equal(torch.cat(parts), whole)
    with pytest.raises(ValueError, match="one draw per image"):
        q.sample(ShardedNoise(torch.Generator(), Rank(0, 1, 0).shard(10)), n=2)


class _ThreadWorld:
    """``world`` threads standing in for processes: ``sum_across`` waits for all of them and
    returns the sum of what each contributed, as gloo's all-reduce does."""

    def __init__(self, world: int) -> None:
        self.world = world
        self._barrier = threading.Barrier(world)
        self._slots: list[torch.Tensor | None] = [None] * world

    def sum_across(self, rank: int, t: torch.Tensor) -> torch.Tensor:
        self._slots[rank] = t.detach().clone()
        self._barrier.wait()
        total = torch.stack(self._slots).sum(dim=0)
        self._barrier.wait()  # everyone has read before the next call overwrites
        return total

    def run(self, fn):
        out, errors = [None] * self.world, []

        def work(r):
            try:
                out[r] = fn(r)
            except BaseException as err:
                errors.append(err)
                self._barrier.abort()

        threads = [threading.Thread(target=work, args=(r,)) for r in range(self.world)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        return out


CASES = {
    "bernoulli": dict(latent_dim=4, hidden_dim=32),
    "free bits": dict(latent_dim=6, hidden_dim=32),
    "free bits, 1 dim": dict(latent_dim=1, hidden_dim=32),
    "gaussian learned, conditional": dict(
        latent_dim=4, hidden_dim=32, likelihood="gaussian", gaussian_variance="learned", conditional=True
    ),
    "hierarchical, free bits": dict(arch="hierarchical", latent_dim=3, bottom_latent_dim=5, hidden_dim=32),
    "autoencoder": dict(latent_dim=4, hidden_dim=32, autoencoder=True),
}


@pytest.mark.parametrize("world", [2, 3])
@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_shard_losses_and_gradients_add_up_to_the_whole_batch(case, world):
    """Σ over shards of the loss terms and of their gradients = the whole batch's, for every
    likelihood, level count and free bits (whose clamp must be decided on the global mean)."""
    torch.manual_seed(0)
    cfg = ModelConfig(input_shape=(1, 8, 8), num_classes=10, **CASES[case])
    model = build_model(cfg, seed=1)
    x = torch.rand(11, 1, 8, 8)  # 11 rows: shards of unequal size
    y = torch.randint(0, 10, (11,))
    params = [p for p in model.parameters() if p.requires_grad]

    def terms_of(xb, yb, noise, shard, free_bits):
        out = model(xb, yb, noise)
        return elbo_loss(xb, out, model.likelihood, 0.7, free_bits, model.x_logvar, shard)

    free_bits = 0.0
    if "free bits" in case:  # λ between the top level's batch-mean KLs: some clamped, some not
        dims = terms_of(x, y, torch.Generator().manual_seed(3), None, 0.0).kl_per_dim.sort().values
        # one dimension: λ above its KL, so the whole KL term is clamped (and has no gradient)
        free_bits = (
            float(dims[len(dims) // 2 - 1] + dims[len(dims) // 2]) / 2
            if len(dims) > 1
            else 2 * float(dims[0])
        )
    full = terms_of(x, y, torch.Generator().manual_seed(3), None, free_bits)
    full_grads = torch.autograd.grad(full.loss, params)

    threads = _ThreadWorld(world)

    def shard_work(r):
        base = Rank(r, world, r).shard(len(x))
        shard = BatchShard(base.rows, base.lo, base.hi, lambda t, r=r: threads.sum_across(r, t))
        noise = ShardedNoise(torch.Generator().manual_seed(3), shard)
        t = terms_of(x[shard.lo : shard.hi], y[shard.lo : shard.hi], noise, shard, free_bits)
        return t, torch.autograd.grad(t.loss, params)

    results = threads.run(shard_work)
    for name in ("loss", "recon", "kl", "kl_per_dim"):
        total = sum(getattr(t, name) for t, _ in results)
        torch.testing.assert_close(total, getattr(full, name), rtol=1e-5, atol=1e-5)
    for i, g in enumerate(full_grads):
        torch.testing.assert_close(sum(grads[i] for _, grads in results), g, rtol=1e-4, atol=1e-6)


@pytest.fixture
def one_process_group(tmp_path):
    """A real gloo process group of one process (the Trainer's DDP path, without a launcher)."""
    store = dist.FileStore(str(tmp_path / "store"), 1)
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    yield Rank(0, 1, 0)
    dist.destroy_process_group()


def test_trainer_through_ddp_matches_one_process(one_process_group, tiny_data, tiny_config):
    cfg = TrainConfig(epochs=2, batch_size=16, seed=3, free_bits=0.1, binarize=True)
    plain = Trainer(build_model(tiny_config, 3), tiny_data, cfg)
    ddp = Trainer(build_model(tiny_config, 3), tiny_data, cfg, rank=one_process_group)
    a = [r for r in plain.run() if isinstance(r, EpochRecord)]
    b = [r for r in ddp.run() if isinstance(r, EpochRecord)]
    assert ddp.thread_tuner is None  # processes split the cores by a fixed share instead
    assert [r.step for r in a] == [r.step for r in b]
    for ra, rb in zip(a, b, strict=True):
        assert rb.test_loss == pytest.approx(ra.test_loss, rel=1e-5)
    wa, wb = plain.model.state_dict(), ddp.model.state_dict()
    for k in wa:
        torch.testing.assert_close(wb[k], wa[k], rtol=1e-5, atol=1e-6)


def test_bfloat16_autocast_trains_on_the_cpu_as_on_a_gpu(tiny_data, tiny_config):
    """The --amp path (autocast) runs the same code on the CPU: it learns, close to float32."""
    cfg = TrainConfig(epochs=2, batch_size=16, seed=0)
    f32 = Trainer(build_model(tiny_config), tiny_data, cfg)
    bf16 = Trainer(build_model(tiny_config), tiny_data, cfg, amp=torch.bfloat16)
    ea = [r for r in f32.run() if isinstance(r, EpochRecord)]
    eb = [r for r in bf16.run() if isinstance(r, EpochRecord)]
    assert eb[-1].test_loss < eb[0].test_loss + 1e-6 or eb[-1].train_loss < eb[0].train_loss
    assert eb[-1].test_loss == pytest.approx(ea[-1].test_loss, rel=0.05)
    assert all(p.dtype == torch.float32 for p in bf16.model.parameters())  # weights stay fp32


def test_amp_needs_a_gpu(capsys):
    assert amp_dtype(torch.device("cpu"), False) is None
    with pytest.raises(ValueError, match="needs a GPU"):
        amp_dtype(torch.device("cpu"), True)
    status = cli.main(["train", "--dataset", "digits", "--amp", "--no-download", "--out", "x.safetensors"])
    err = capsys.readouterr().err.splitlines()
    assert status == 2 and len(err) == 1 and "--amp needs a GPU" in err[0]


def test_processes_on_one_machine_split_its_cores(monkeypatch):
    monkeypatch.delenv("VAE_EXPLORER_THREADS", raising=False)
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
        assert local_world_size() == 2
        from vae_explorer.device import usable_cores

        assert configure_threads(local_world_size()) == max(1, usable_cores() // 2)
        monkeypatch.setenv("LOCAL_WORLD_SIZE", "two")
        with pytest.raises(ValueError, match="LOCAL_WORLD_SIZE must be a whole number"):
            local_world_size()
    finally:
        torch.set_num_threads(before)
