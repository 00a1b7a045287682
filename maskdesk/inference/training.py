"""Fine-tuning (or training the tiny model from scratch) on a COCO file.

Checkpoints: OUTPUT always holds the best-validated weights so far; before the first
validation, or without a validation split, it holds the latest weights. Training state
(latest weights, optimizer, position, and the run's COCO file, image folder and settings)
goes to OUTPUT.resume.pt after every epoch and on an interruption (Ctrl-C or should_stop()),
so `resume` continues where it stopped, told nothing else (`saved_settings`); the side file
is removed when a run completes. Crowd regions are counted as skipped, not trained on.
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from maskdesk.core.coco_read import read_coco
from maskdesk.core.errors import CocoError, MaskdeskError, ModelError
from maskdesk.inference.checkpoints import Checkpoint, load_file, save_checkpoint
from maskdesk.inference.finetune import build_for_training, input_sizes, set_train_mode
from maskdesk.inference.predictor import pick_device
from maskdesk.inference.training_data import CocoDataset, check_images, collate, evaluate_mask_ap

STATE_FORMAT = "maskdesk-training-state"
JITTER = (0.8, 0.9, 1.0, 1.1, 1.2)  # scale jitter: the model's input size times these


@dataclass
class TrainOptions:
    """What `maskdesk train` was asked to do."""

    coco: Path
    images: Path
    output: Path
    base: str = "coco-v1"  # coco-v1 | coco-v2 | tiny | PATH of a checkpoint
    epochs: int = 10
    batch: int = 4
    lr: float | None = None  # None: 0.02 from scratch, 0.005 when fine-tuning
    device: str = "auto"
    val_fraction: float = 0.1
    resume: Path | None = None
    seed: int = 0
    workers: int = 0
    threads: int = 2
    offline: bool = False
    budget_s: float | None = None  # train for about this long instead of `epochs`
    # False: no training state, and the model written once, when the run completes (a
    # folder's training round, which starts over rather than resumes).
    resumable: bool = True


@dataclass
class TrainProgress:
    """One report: kind "iteration" after each step, "epoch" after each validation."""

    kind: str
    epoch: int  # 1-based
    epochs: int
    iteration: int  # steps done, all epochs together
    total_iterations: int
    losses: dict[str, float] = field(default_factory=dict)
    images_per_s: float = 0.0
    eta_s: float = 0.0
    lr: float = 0.0
    val_ap: float | None = None
    val_ap50: float | None = None
    best_ap: float | None = None


@dataclass
class TrainResult:
    """What a run did; `interrupted` runs leave their state at `resume_path`."""

    output: Path
    iterations: int
    epochs_done: int
    best_ap: float | None
    final_ap: float | None
    interrupted: bool
    resume_path: Path | None  # where the training state is, when interrupted
    skipped: dict[str, int]
    train_images: int
    val_images: int


def resume_path_for(output: Path) -> Path:
    return output.with_name(output.name + ".resume.pt")


def _split(count: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    order = np.random.default_rng(seed).permutation(count).tolist()
    n_val = min(count - 1, round(count * fraction)) if fraction > 0 and count >= 2 else 0
    if fraction > 0 and count >= 2:
        n_val = max(1, n_val)
    return sorted(order[n_val:]), sorted(order[:n_val])


def model_path_for(resume: Path) -> Path:
    """The model file a training state belongs to (MODEL.pt for MODEL.pt.resume.pt)."""
    return resume.with_name(resume.name.removesuffix(".resume.pt") or resume.name)


def _load_state(path: Path) -> tuple[Path, dict[str, Any]]:
    """(where the state was found, the state) for MODEL.pt or MODEL.pt.resume.pt."""
    candidates = [path] if path.name.endswith(".resume.pt") else [resume_path_for(path), path]
    for candidate in candidates:
        if candidate.is_file():
            obj = load_file(
                candidate,
                expected="a maskdesk training state",
                fix="give the model file of an interrupted run, or its .resume.pt",
                setting="resume",
            )
            if isinstance(obj, dict) and obj.get("format") == STATE_FORMAT:
                return candidate, obj
    model = model_path_for(path)
    raise ModelError(
        f"No training state found for {path} (looked for {candidates[0]}); a finished run "
        "keeps none. To train further from a finished model, give it as the base model.",
        setting="base",
        value=str(model) if model.is_file() else None,
    )


def saved_settings(resume: Path) -> dict[str, Any]:
    """What an interrupted run was started with, to go on without being told again.

    Keys: output (the model the state belongs to), epochs_done, batch, seed, val_fraction,
    and where the state records them (older states do not): coco, images, base, epochs, lr.
    """
    found, state = _load_state(resume)
    saved: dict[str, Any] = dict(state.get("options") or {})
    for key in ("coco", "images"):
        if key in saved:
            saved[key] = Path(saved[key])
    saved.update(
        output=model_path_for(found),
        batch=int(state["batch"]),
        seed=int(state["seed"]),
        val_fraction=float(state["val_fraction"]),
        epochs_done=int(state["epoch"]),
    )
    return saved


def _images_digest(file_names: list[str]) -> str:
    return hashlib.sha256("\n".join(file_names).encode()).hexdigest()


def _lr_at(iteration: int, total: int, base_lr: float) -> float:
    warmup = min(200, max(1, total // 10))
    if iteration < warmup:
        return base_lr * (0.001 + 0.999 * iteration / warmup)
    progress = (iteration - warmup) / max(1, total - warmup)
    return base_lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def train(
    options: TrainOptions,
    on_progress: Callable[[TrainProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainResult:
    """Train per `options`; see the module docstring for what is written where."""
    torch.set_num_threads(max(1, options.threads))
    state = _load_state(options.resume)[1] if options.resume is not None else None
    saved: dict[str, Any] = dict(state.get("options") or {}) if state is not None else {}
    if state is not None:  # the split and the batches must be the ones the run started with
        options = copy.copy(options)
        options.seed, options.batch = int(state["seed"]), int(state["batch"])
        options.val_fraction = float(state["val_fraction"])
        done = int(state["epoch"])
        if options.epochs <= done:
            raise MaskdeskError(
                f"The interrupted run has already done {_count(done, 'epoch')}; ask for more "
                "to go on.",
                setting="epochs",
                value=str(max(done + 1, int(saved.get("epochs", 0)))),
            )
    torch.manual_seed(options.seed)
    coco = read_coco(options.coco)
    categories = list(coco.categories)
    if not categories or not coco.images:
        raise CocoError(f"{options.coco} has no images or no categories to train on.")
    skipped = dict(coco.skipped)
    # Crowd regions are read (they are part of the file) but not trained on: see CocoDataset.
    crowds = sum(1 for im in coco.images for inst in im.instances if inst.crowd)
    if crowds:
        skipped["crowd"] = skipped.get("crowd", 0) + crowds
    digest = _images_digest([im.file_name for im in coco.images])
    if state is not None and (
        [c["name"] for c in state["categories"]] != [c.name for c in categories]
        or saved.get("images_digest", digest) != digest
    ):
        raise CocoError(
            f"{options.coco} has other categories or images than the COCO file the "
            "interrupted run started with; resume with that file.",
            setting="coco",
            value=saved.get("coco"),
        )
    check_images(options.coco, options.images, coco.images)
    device = pick_device(options.device)
    model, architecture, fine_tuning = build_for_training(
        options.base, categories, state, options.offline
    )
    model.to(device)
    min_size, max_size = input_sizes(model)
    label_of = {c.id: i + 1 for i, c in enumerate(categories)}
    train_idx, val_idx = _split(len(coco.images), options.val_fraction, options.seed)
    big = max(JITTER)
    train_set = CocoDataset(
        options.images,
        [coco.images[i] for i in train_idx],
        label_of,
        max_short=round(min_size * big),
        max_long=round(max_size * big),
        flip=True,
    )
    val_set = CocoDataset(
        options.images,
        [coco.images[i] for i in val_idx],
        label_of,
        max_short=min_size,
        max_long=max_size,
    )
    base_lr = options.lr or (0.005 if fine_tuning else 0.02)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=base_lr, momentum=0.9, weight_decay=1e-4)
    per_epoch = math.ceil(len(train_set) / options.batch)
    epochs = options.epochs
    if options.budget_s is not None:
        # Planned once the first iterations have been timed (see `replan`); until then the
        # schedule assumes one iteration a second.
        epochs = max(1, math.ceil(options.budget_s / per_epoch))
    total = epochs * per_epoch
    epoch, skip, iteration = 0, 0, 0
    best_ap: float | None = None
    history: list[dict[str, Any]] = []
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        epoch, skip, iteration = (
            int(state["epoch"]),
            int(state["batch_index"]),
            int(state["iteration"]),
        )
        best_ap, history = state["best_ap"], list(state["history"])

    summary_base = {
        "dataset": options.coco.name,
        "base": str(state["base"]) if state else options.base,
        "train_images": len(train_set),
        "val_images": len(val_set),
        "skipped": dict(skipped),
        "batch": options.batch,
    }

    def checkpoint(interrupted: bool) -> Checkpoint:
        finals = [h["ap"] for h in history if h.get("ap") is not None]
        summary = dict(summary_base)
        summary.update(
            epochs=epoch,
            iterations=iteration,
            best_val_ap=best_ap,
            final_val_ap=finals[-1] if finals else None,
            history=list(history),
            date=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            interrupted=interrupted,
        )
        weights = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        return Checkpoint(architecture, categories, weights, min_size, max_size, summary)

    # Enough to go on from the state alone; paths absolute, so any working folder will do.
    run_options = {
        "coco": str(options.coco.resolve()),
        "images": str(options.images.resolve()),
        "base": summary_base["base"],
        "epochs": options.epochs,
        "lr": options.lr,
        "images_digest": digest,
    }

    def save_state(batch_index: int) -> Path:
        path = resume_path_for(options.output)
        ckpt = checkpoint(interrupted=True)
        tmp = path.with_name(path.name + ".tmp")
        torch.save(
            {
                "format": STATE_FORMAT,
                "architecture": architecture,
                "fine_tuning": fine_tuning,
                "min_size": min_size,
                "max_size": max_size,
                "base": summary_base["base"],
                "categories": [{"id": c.id, "name": c.name} for c in categories],
                "model": ckpt.state_dict,
                "optimizer": optimizer.state_dict(),
                "epoch": epoch,
                "batch_index": batch_index,
                "iteration": iteration,
                "best_ap": best_ap,
                "history": history,
                "seed": options.seed,
                "batch": options.batch,
                "val_fraction": options.val_fraction,
                "options": run_options,
            },
            tmp,
        )
        tmp.replace(path)
        return path

    def report(kind: str, **values: Any) -> None:
        if on_progress is not None:
            on_progress(TrainProgress(kind, epoch + 1, epochs, iteration, total, **values))

    def result(interrupted: bool, resume: Path | None) -> TrainResult:
        finals = [h["ap"] for h in history if h.get("ap") is not None]
        return TrainResult(
            options.output,
            iteration,
            epoch,
            best_ap,
            finals[-1] if finals else None,
            interrupted,
            resume,
            dict(skipped),
            len(train_set),
            len(val_set),
        )

    batch_index = skip
    seconds_per_it: float | None = None
    run_started = time.perf_counter()
    try:
        while epoch < epochs:
            order = np.random.default_rng([options.seed, epoch]).permutation(len(train_set))
            batches = [
                order[i : i + options.batch].tolist() for i in range(0, len(order), options.batch)
            ]
            set_train_mode(model, fine_tuning)
            model.transform.min_size = tuple(round(min_size * f) for f in JITTER)
            model.transform.max_size = round(max_size * big)
            loader = torch.utils.data.DataLoader(
                train_set,
                batch_sampler=batches[batch_index:],
                collate_fn=collate,
                num_workers=options.workers,
            )
            started = time.perf_counter()
            for images, targets in loader:
                if should_stop is not None and should_stop():
                    raise KeyboardInterrupt
                lr = _lr_at(iteration, total, base_lr)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                images = [im.to(device) for im in images]
                targets = [{k: v.to(device) for k, v in t.items()} for t in targets]
                losses = model(images, targets)
                loss = sum(losses.values())
                if not torch.isfinite(loss):
                    raise MaskdeskError(
                        f"Training diverged at iteration {iteration + 1} (loss {loss.item()}); "
                        "try a lower learning rate.",
                        setting="lr",
                        value=f"{base_lr / 10:g}",
                    )
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(params, 10.0)
                optimizer.step()
                iteration += 1
                batch_index += 1
                now = time.perf_counter()
                dt, started = now - started, now
                seconds_per_it = dt if seconds_per_it is None else 0.9 * seconds_per_it + 0.1 * dt
                if options.budget_s is not None:
                    total = _replan(total, iteration, now - run_started, options.budget_s)
                    epochs = max(epoch + 1, math.ceil(total / per_epoch))
                report(
                    "iteration",
                    losses={k: v.item() for k, v in losses.items()} | {"loss": loss.item()},
                    images_per_s=len(images) / seconds_per_it,
                    eta_s=(total - iteration) * seconds_per_it,
                    lr=lr,
                    best_ap=best_ap,
                )
                if iteration >= total:
                    epochs = epoch + 1  # the budget is spent: this epoch is the last
                    break
            model.transform.min_size, model.transform.max_size = (min_size,), max_size
            scores = (
                evaluate_mask_ap(model, val_set, device, len(categories)) if len(val_set) else None
            )
            ap = scores["ap"] if scores else None
            history.append(
                {
                    "epoch": epoch + 1,
                    "iteration": iteration,
                    "ap": ap,
                    "ap50": scores["ap50"] if scores else None,
                }
            )
            improved = ap is not None and (best_ap is None or ap > best_ap)
            if improved:
                best_ap = ap
            epoch += 1
            batch_index = 0
            # A run that is not resumable keeps its final weights, written once.
            if (improved or best_ap is None) if options.resumable else epoch >= epochs:
                save_checkpoint(checkpoint(interrupted=False), options.output)
            report("epoch", val_ap=ap, val_ap50=scores["ap50"] if scores else None, best_ap=best_ap)
            if epoch < epochs and options.resumable:
                save_state(0)
    except KeyboardInterrupt:
        model.transform.min_size, model.transform.max_size = (min_size,), max_size
        if not options.resumable:
            return result(True, None)
        if best_ap is None or not options.output.exists():
            save_checkpoint(checkpoint(interrupted=True), options.output)
        return result(True, save_state(batch_index))
    # The final summary (all epochs, final AP) goes with the best weights.
    if best_ap is not None:
        from maskdesk.inference.checkpoints import read_checkpoint

        best = read_checkpoint(options.output)
        final = checkpoint(interrupted=False)
        save_checkpoint(
            Checkpoint(
                architecture,
                categories,
                best.state_dict,
                min_size,
                max_size,
                final.training | {"best_epoch": _best_epoch(history)},
            ),
            options.output,
        )
    resume_path_for(options.output).unlink(missing_ok=True)
    return result(False, None)


def _replan(total: int, iteration: int, elapsed: float, budget: float) -> int:
    """The iterations a time budget allows, planned from the speed after 3 and 20 of them;
    a run past its budget stops after the current one."""
    if elapsed >= budget:
        return iteration
    if iteration in (3, 20):
        return max(iteration + 1, round(budget * iteration / elapsed))
    return total


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _best_epoch(history: list[dict[str, Any]]) -> int | None:
    scored = [h for h in history if h.get("ap") is not None]
    return max(scored, key=lambda h: h["ap"])["epoch"] if scored else None
