"""Training: the objective of `objective.py` (rectified flow from noise, or the bridge from the source) on
the target tokens, AdamW, bf16 autocast on GPU, grad clipping, EMA, metrics JSONL, safetensors checkpoints
with exact resume; one process or `torchrun` DDP (nccl on GPU, gloo on CPU).
A run pins the `edit_pairs` snapshot it reads and keeps it in every checkpoint, so `--resume` continues on the
same rows even after rows were appended (it says so) and refuses when the pinned files are gone.

`python -m isa_model train --config tiny --out runs/tiny [--resume] [--time-limit 300]`
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from tqdm import tqdm

from isa_model import checkpoint as ck
from isa_model import objective
from isa_model.config import Config, ConfigError
from isa_model.data import EditPairs, Position, ResumableSampler, advance, make_loader
from isa_model.model import LIVEditor
from isa_model.synthetic_pairs import build_pairs
from manifests import ManifestError, Snapshot, take_snapshot
from manifests.errors import first_line
from manifests.snapshot import TableSnapshot
from manifests.storage import Location, location

T = TypeVar("T")


def lr_at(step: int, cfg: Config) -> float:
    """Warm-up, then constant; with `train.decay_steps`, linear to 0 over the last decay_steps of `train.steps`
    (warmup-stable-decay). The constant part does not depend on `train.steps`, so a run resumed with more
    steps keeps its past and moves only its decay."""
    warm = min(1.0, (step + 1) / max(1, cfg.train.warmup))
    decay = min(1.0, max(0, cfg.train.steps - step) / cfg.train.decay_steps) if cfg.train.decay_steps else 1.0
    return cfg.train.lr * warm * decay


def ema_decay(step: int, target: float) -> float:
    """EMA decay with warm-up: early averages must not keep the initial (zero adaLN) weights for long."""
    return min(target, (1 + step) / (10 + step))


def dataset_root(cfg: Config, out: Path) -> Location:
    """The configured dataset (a folder or an `s3://` root), or the synthetic pair set built (once) beside the run."""
    if cfg.data.root:
        return location(cfg.data.root, "data root")
    root = out / "synthetic_pairs"
    build_pairs(root, cfg.data.synthetic_clips, cfg.data.synthetic_frames, cfg.data.synthetic_size,
                seed=cfg.train.seed)
    return root


def pin_snapshot(root: Location, ckpt: Path | None, snapshot_file: str = "") -> Snapshot:
    """The `edit_pairs` rows a run trains on: those the resumed checkpoint pinned (their files looked up under
    `root`, which may have moved), else those of `snapshot_file`, else a snapshot taken now. Pinned files that
    are gone are refused."""
    pinned = ck.read_snapshot(ckpt) if ckpt else None
    if pinned is None:
        if ckpt:
            print(f"{ckpt.name} pins no edit_pairs snapshot (written before runs kept one): "
                  "the resume reads edit_pairs as it is now", flush=True)
        return snapshot_from_file(root, snapshot_file) if snapshot_file else take_snapshot(root, ["edit_pairs"])
    assert ckpt is not None  # a pinned snapshot was read from it
    pinned = replace(pinned, root=str(root.absolute()))
    missing = pinned.missing_files()
    if missing:
        raise ck.CheckpointError(f"checkpoint {ckpt.name}: {len(missing)} file(s) of the edit_pairs snapshot this "
                                 f"run trains on are gone (e.g. {missing[0]}); restore them or start a new run "
                                 "without --resume")
    if not snapshot_file:  # with a snapshot file the Delta log may not be readable here (no deltalake)
        note_changed_rows(root, pinned.table("edit_pairs"))
    return pinned


def snapshot_from_file(root: Location, path: str) -> Snapshot:
    """The snapshot a JSON file holds (`Snapshot.to_json`, e.g. a registered one), its files under `root`: rows
    pinned where the data was curated, read where no Delta log can be (a machine without deltalake)."""
    try:
        snapshot = Snapshot.from_json(Path(path).read_text())
    except OSError as exc:
        raise ManifestError(f"snapshot {path}: {exc.strerror or exc}") from None
    snapshot = replace(snapshot, root=str(root.absolute()))
    missing = snapshot.missing_files()
    if missing:
        raise ManifestError(f"snapshot {path}: {len(missing)} of its files are not under {root} (e.g. {missing[0]})")
    return snapshot


def note_changed_rows(root: Location, pinned: TableSnapshot) -> None:
    """One line when `edit_pairs` is no longer what the run pinned (rows appended, compacted): it keeps its rows."""
    try:
        now = take_snapshot(root, ["edit_pairs"]).table("edit_pairs")
    except ManifestError as exc:
        print(f"edit_pairs cannot be read as it is now ({exc}); the resume keeps the {pinned.rows} rows it pinned",
              flush=True)
        return
    if {f.path for f in now.files} != {f.path for f in pinned.files}:
        print(f"edit_pairs has changed since this run pinned it ({now.rows} rows now, {pinned.rows} pinned); "
              f"the resume keeps the pinned rows", flush=True)


class Trainer:
    """Holds the model, EMA, optimiser, data position and RNG; `run` trains to `cfg.train.steps`."""

    def __init__(self, cfg: Config, out: str | Path, resume: bool = False) -> None:
        self.cfg, self.out = cfg, Path(out)
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        cuda = torch.cuda.is_available()
        if self.world > 1 and not dist.is_initialized():
            # torchrun's env:// store listens on every interface; LIVEDITOR_DIST_INIT=file:///shared/path (with
            # RANK/WORLD_SIZE/LOCAL_RANK set by the launcher) rendezvouses through a file instead
            init = os.environ.get("LIVEDITOR_DIST_INIT")
            ranks: dict[str, Any] = {"rank": self.rank, "world_size": self.world} if init else {}
            dist.init_process_group("nccl" if cuda else "gloo", init_method=init, **ranks)
        self.device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}" if cuda else "cpu")
        if cuda:
            torch.cuda.set_device(self.device)
        self.out.mkdir(parents=True, exist_ok=True)
        last = ck.latest(self.out / "checkpoints") if resume else None
        self.snapshot = self.from_rank0(lambda: pin_snapshot(dataset_root(cfg, self.out), last, cfg.data.snapshot))
        root = self.snapshot.root
        torch.manual_seed(cfg.train.seed)  # same initial weights on every rank
        self.model = LIVEditor(cfg.model).to(self.device)
        self.ema = {k: p.detach().float().clone() for k, p in self.model.named_parameters()}
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay,
                                     betas=(0.9, 0.99))
        self.gen = torch.Generator().manual_seed(cfg.train.seed * 1000 + self.rank)
        self.step, self.position = 0, Position()
        self.dataset = EditPairs(root, "train", cfg.model, cfg.train.seed, cfg.data.frame_stride, train=True,
                                 snapshot=self.snapshot, random_crop=cfg.data.crop == "random",
                                 mirror=cfg.data.mirror, reverse=cfg.data.reverse)
        if len(self.dataset) == 0:
            raise ConfigError(f"{root}: no train rows in edit_pairs")
        self.empty_tokens = self.model.text.tokenize([""])  # (1, L): the unconditional instruction
        if last:
            self._resume(last)
        sampler = ResumableSampler(len(self.dataset), cfg.train.seed, self.rank, self.world, position=self.position)
        self.per_epoch = len(sampler.order(0))
        self.loader = make_loader(self.dataset, cfg.data.batch_size, cfg.data.workers, sampler)
        self.net: torch.nn.Module = self.model
        if self.world > 1:
            self.net = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=[self.device] if cuda else None)
        self.skipped = 0

    def from_rank0(self, make: Callable[[], T]) -> T:
        """`make()` run on rank 0 and handed to every rank; so is its one-line error, so no rank waits forever."""
        if self.world == 1:
            return make()
        box: list[Any] = [None]
        if self.rank == 0:
            try:
                box[0] = make()
            except (ConfigError, ck.CheckpointError, ManifestError) as exc:
                box[0] = exc
        dist.broadcast_object_list(box, src=0)
        if isinstance(box[0], Exception):
            raise box[0]
        return box[0]

    def provenance(self) -> dict[str, str]:
        return {"text_weights": self.model.text.weights_id, "text_model": self.cfg.model.text_model,
                "weights": "trained-from-scratch", "latent": self.cfg.model.latent}

    def _resume(self, ckpt: Path) -> None:
        saved, _ = ck.read_config(ckpt)
        ck.check_same_model(saved, self.cfg, ckpt)
        self.model.load_state_dict(ck.load_weights(ckpt, "model", ck.shapes_of(self.model.state_dict())))
        params = ck.shapes_of(dict(self.model.named_parameters()))
        self.ema = {k: v.to(self.device) for k, v in ck.load_weights(ckpt, "ema", params).items()}
        state = ck.load_state(ckpt)
        try:
            self.opt.load_state_dict(state["optimizer"])
            self.step = int(state["step"])
            self.position = Position(**state["position"])
            self.gen.set_state(state["rng"][self.rank])
        except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as exc:  # a state from elsewhere
            raise ck.CheckpointError(f"checkpoint {ckpt.name}: state.pt does not fit this run "
                                     f"({type(exc).__name__}: {first_line(exc)})") from None
        for p in self.model.parameters():
            for key, value in self.opt.state.get(p, {}).items():
                if not torch.is_tensor(value) or (value.dim() and value.shape != p.shape):
                    raise ck.CheckpointError(f"checkpoint {ckpt.name}: state.pt's optimiser {key} for a parameter "
                                             f"of shape {list(p.shape)} is not a tensor of that shape")
        if self.rank == 0:
            print(f"resumed from {ckpt.name} at step {self.step}", flush=True)

    def _gather_rng(self) -> list[torch.Tensor]:
        if self.world == 1:
            return [self.gen.get_state()]
        states: list[Any] = [None] * self.world
        dist.all_gather_object(states, self.gen.get_state())
        return states

    def save(self) -> Path | None:
        rng = self._gather_rng()
        if self.rank != 0:
            return None
        state = {"optimizer": self.opt.state_dict(), "step": self.step, "position": asdict(self.position), "rng": rng}
        return ck.save_checkpoint(self.out / "checkpoints", self.step, self.cfg, self.model, self.ema, state,
                                  self.provenance(), self.snapshot)

    def train_step(self, batch: dict[str, Any]) -> dict[str, float]:
        cfg, dev = self.cfg, self.device
        x0 = batch["target"].to(dev)  # (B, C, T, H, W)
        source = batch["source"].to(dev)
        b = x0.shape[0]
        noise = torch.randn(x0.shape, generator=self.gen).to(dev)
        t = objective.timesteps(cfg.model.objective, b, self.gen).to(dev)
        drop = torch.rand(b, generator=self.gen) < cfg.train.text_dropout
        tokens = torch.where(drop[:, None], self.empty_tokens, batch["tokens"]).to(dev)  # (B, L)
        layout = torch.where(drop[:, None], 0.0, batch["layout"]).to(dev)  # (B, 7): dropped with its words
        x1 = objective.path_start(cfg.model.objective, source, noise)  # (B, C, T, H, W)
        x_t, v = objective.path_point(x0, x1, t)
        changed = objective.change_mask(source, x0)  # (B, 1, T, H, W)
        for group in self.opt.param_groups:
            group["lr"] = lr_at(self.step, cfg)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=dev.type == "cuda" and cfg.train.bf16):
            text = self.model.encode_text(tokens)  # its grads reach DDP's hooks like any parameter's
            raw = self.net(x_t, t, source, text, batch["box"].to(dev), layout)
        pred = objective.split_output(raw, cfg.model.channels, cfg.model.blend_mask)
        loss, parts = objective.loss(pred, v, changed, cfg.train.mask_weight, cfg.train.edit_weight)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.train.grad_clip)
        self.opt.step()
        decay = ema_decay(self.step, cfg.train.ema)
        with torch.no_grad():
            for k, p in self.model.named_parameters():
                self.ema[k].lerp_(p.detach().float(), 1 - decay)
        return {"loss": loss.item(), "grad_norm": float(grad_norm), **parts}

    def run(self, time_limit: float | None = None) -> list[dict[str, Any]]:
        """Train until the configured step count (or the time limit, checkpointing there); returns the logs."""
        cfg = self.cfg
        tokens_per_sample = 2 * cfg.model.tokens_per_clip
        logs, start = [], time.time()
        metrics = (self.out / "metrics.jsonl").open("a") if self.rank == 0 else None
        bar = tqdm(total=cfg.train.steps, initial=self.step, disable=self.rank != 0, desc="train", dynamic_ncols=True)
        batches = iter(self.loader)
        unreadable_in_a_row = 0
        try:
            while self.step < cfg.train.steps:
                t0 = time.time()
                batch = next(batches)
                data_s = time.time() - t0  # waiting on the loader: a step that is mostly this is data-bound
                self.position = advance(self.position, batch["skipped"] + batch["size"], self.per_epoch)
                self.skipped += batch["skipped"]
                if batch["size"] == 0:
                    unreadable_in_a_row += batch["skipped"]
                    if unreadable_in_a_row >= self.per_epoch:  # a whole epoch without one readable pair: never ends
                        raise ManifestError(f"none of the {self.per_epoch} training pairs could be read (their clip, "
                                            "target or mask files are missing or undecodable)")
                    continue
                unreadable_in_a_row = 0
                out = self.train_step(batch)
                if self.device.type == "cuda":
                    torch.cuda.synchronize()
                self.step += 1
                dt = time.time() - t0
                out.update(step=self.step, lr=lr_at(self.step - 1, cfg), skipped=self.skipped, step_s=dt, data_s=data_s,
                           tokens_per_s=tokens_per_sample * batch["size"] * self.world / dt)
                logs.append(out)
                if metrics:
                    metrics.write(json.dumps(out) + "\n")
                    metrics.flush()
                bar.update(1)
                if self.step % cfg.train.log_every == 0:
                    bar.set_postfix(loss=f"{out['loss']:.4f}", tok_s=f"{out['tokens_per_s']:.0f}")
                out_of_time = time_limit is not None and time.time() - start > time_limit
                if self.world > 1:
                    flag = torch.tensor([float(out_of_time)], device=self.device)
                    dist.all_reduce(flag)
                    out_of_time = bool(flag.item())
                if self.step % cfg.train.ckpt_every == 0 or self.step == cfg.train.steps or out_of_time:
                    self.save()
                if out_of_time:
                    break
        except BaseException:
            bar.leave = False  # the error line, not a half-drawn bar, is what stays on the screen
            bar.close()
            raise
        bar.close()
        if metrics:
            metrics.close()
            plot_loss(self.out / "metrics.jsonl", self.out / "loss.png")
        return logs


def plot_loss(metrics: Path, png: Path) -> None:
    """Loss per step (and its running mean) from a metrics file, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    steps = [r["step"] for r in rows]
    loss = [r["loss"] for r in rows]
    k = max(1, len(loss) // 50)
    smooth = [sum(loss[max(0, i - k + 1) : i + 1]) / len(loss[max(0, i - k + 1) : i + 1]) for i in range(len(loss))]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(steps, loss, alpha=0.3, label="loss")
    ax.plot(steps, smooth, label=f"mean of {k}")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (velocity MSE + mask BCE)")
    ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)


def train(cfg: Config, out: str | Path, resume: bool = False, time_limit: float | None = None) -> list[dict[str, Any]]:
    if cfg.model.isa.fp8_scores:
        raise ConfigError("model.isa.fp8_scores is for sampling (validate --isa-fp8 on): the backward would "
                          "recompute the scores in bf16, not those of the forward")
    trainer = Trainer(cfg, out, resume)
    try:
        logs = trainer.run(time_limit)
        if trainer.rank == 0 and logs:
            last = logs[-1]
            print(f"step {last['step']}: loss {last['loss']:.4f}, {last['tokens_per_s']:.0f} tokens/s, "
                  f"{trainer.skipped} pairs skipped", flush=True)
        return logs
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()

