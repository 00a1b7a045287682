"""`maskdesk train FOLDER`: one training round on the folder's reviewed images.

The reviewed images are read once, at the start, and split into training and held-out images
(core.holdout: stable across rounds). The model trains on the first; then the current model and
the new one are both measured on the second (core.evaluation). The new model goes to the
folder's models with its card, whatever its figures; `--adopt` makes it the folder's model
when its held-out AP did not drop (`--adopt always`: in any case).

The window runs this command as its training child process with `--json`: one JSON object per
line on stdout (events started, iteration, evaluating, done, error), so a crash or an
out-of-memory kill of training never takes the window down. SIGTERM stops it like Ctrl-C:
nothing is kept of the run.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from maskdesk.cli_messages import describe
from maskdesk.core.errors import MaskdeskError, ModelError
from maskdesk.core.evaluation import RULE, Figures, evaluate
from maskdesk.core.project import Project
from maskdesk.core.project_models import (
    current_model,
    next_name,
    publish,
    set_current_model,
)
from maskdesk.core.training_set import TrainingSet, collect

EXIT_OK, EXIT_ERROR, EXIT_INTERRUPTED = 0, 2, 130
DEFAULT_BUDGET_S = 120.0
RUN_PREFIX = ".run-"


class Events:
    """Where a round reports: JSON lines on stdout (--json), or lines for a person on stderr."""

    def __init__(self, as_json: bool, log_every: int = 10) -> None:
        self.as_json = as_json
        self.log_every = max(1, log_every)
        self._last = 0.0

    def __call__(self, event: str, **values: Any) -> None:
        if self.as_json:
            if event == "iteration" and values["iteration"] != values["total"]:
                now = time.monotonic()
                if now - self._last < 0.2:  # a few a second are plenty for a progress bar
                    return
                self._last = now
            print(json.dumps({"event": event, **values}), flush=True)
            return
        if event == "iteration":
            if values["iteration"] % self.log_every and values["iteration"] != values["total"]:
                return
            text = (
                f"it {values['iteration']}/{values['total']} loss {values['loss']:.3f} "
                f"{values['images_per_s']:.1f} img/s, {values['eta_s']:.0f} s left"
            )
        elif event == "started":
            held = len(values["held_out"])
            text = (
                f"training on {values['train_images']} reviewed images, {held} held out; "
                f"classes {', '.join(values['classes'])}; base {values['base']}"
            )
        elif event == "evaluating":
            text = (
                f"measuring the {values['model']} model ({values['name']}) on the held-out images"
            )
        else:
            return
        print(text, file=sys.stderr, flush=True)


def _remove_stale_runs(models_dir: Path) -> None:
    """Run folders of training processes that are gone (killed, crashed) are removed."""
    for run in models_dir.glob(f"{RUN_PREFIX}*"):
        pid = run.name.removeprefix(RUN_PREFIX)
        alive = pid.isdigit() and _alive(int(pid))
        if not alive:
            shutil.rmtree(run, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (the window's Cancel) raises KeyboardInterrupt, like Ctrl-C."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave the default
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _measure(spec: str, gt: dict, folder: Path, device: str) -> tuple[Figures, list[dict]]:
    from maskdesk.inference.held_out import held_out_results
    from maskdesk.inference.models import load_model

    loaded = load_model(spec, offline=True)
    results = held_out_results(loaded, gt, folder, device)
    return evaluate(gt, results), results


def _should_adopt(new: Figures, current: dict[str, Any]) -> bool:
    """The new model is recommended when its held-out AP did not drop (or there is no AP of
    the current model to drop from)."""
    old = current.get("ap")
    return old is None or (new.ap is not None and new.ap >= old)


def run_folder(args: argparse.Namespace) -> int:
    """One round for `maskdesk train FOLDER`; exit 0, 2 on a user error, 130 when stopped."""
    emit = Events(bool(args.json), int(getattr(args, "log_every", 10) or 10))
    run_dir: Path | None = None
    try:
        with _terminate_as_interrupt():
            with Project.open(args.folder) as project:
                _remove_stale_runs(project.models_dir)
                training = collect(project)
                training.check()
                current = args.current or current_model(project) or "coco-v1"
                base = args.base or current
                run_dir = project.models_dir / f"{RUN_PREFIX}{os.getpid()}"
                shutil.rmtree(run_dir, ignore_errors=True)
                training.write(run_dir)
                folder = project.folder
            card = _round(args, emit, training, folder, run_dir, base, current)
            with Project.open(args.folder) as project:
                published = publish(project, next_name(project), run_dir / "model.pt", card)
                (run_dir / "evaluation.json").replace(
                    published.path.with_name(f"{published.name}.evaluation.json")
                )
                adopted = args.adopt == "always" or (args.adopt == "if-better" and card["adopt"])
                if adopted:
                    set_current_model(project, str(published.path))
    except MaskdeskError as exc:
        message = describe(exc, {"base": "--base", "model": "--base/--current"})
        if args.json:  # the window's words: no command-line flags in them
            print(json.dumps({"event": "error", "message": str(exc)}), flush=True)
        print(f"maskdesk: {message}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("maskdesk: training stopped; nothing of this round was kept.", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if run_dir is not None:
            shutil.rmtree(run_dir, ignore_errors=True)
    emit("done", model=str(published.path), card=published.data, adopted=adopted)
    if not args.json:
        print(comparison(published.data), flush=True)
        print(f"model: {published.path}", flush=True)
        print(_adoption_line(published.data, args.adopt, adopted), flush=True)
    return EXIT_OK


def _round(
    args: argparse.Namespace,
    emit: Events,
    training: TrainingSet,
    folder: Path,
    run_dir: Path,
    base: str,
    current: str,
) -> dict[str, Any]:
    """Train, measure both models, and return the new model's card (the model is
    run_dir/model.pt, the held-out predictions run_dir/evaluation.json)."""
    emit(  # before torch is imported: the window shows it within a second or two
        "started",
        run=str(run_dir),
        train_images=len(training.train),
        held_out=[im.file_name for im in training.held_out],
        classes=training.classes,
        counts={k: list(v) for k, v in training.counts.items()},
        base=base,
    )
    from maskdesk.inference.training import TrainOptions, TrainProgress, train

    budget = None if args.epochs is not None else (args.budget or DEFAULT_BUDGET_S)
    started = time.monotonic()

    def progress(p: TrainProgress) -> None:
        if p.kind == "iteration":
            emit(
                "iteration",
                iteration=p.iteration,
                total=p.total_iterations,
                loss=p.losses.get("loss", 0.0),
                images_per_s=p.images_per_s,
                eta_s=p.eta_s,
                elapsed_s=time.monotonic() - started,
            )

    options = TrainOptions(
        coco=run_dir / "train.json",
        images=folder,
        output=run_dir / "model.pt",
        base=base,
        epochs=args.epochs or 10,
        batch=args.batch or 4,
        lr=args.lr,
        device=args.device,
        val_fraction=0.0,
        seed=args.seed or 0,
        threads=args.threads or max(1, (os.cpu_count() or 2) - 1),
        offline=args.offline,
        budget_s=budget,
        resumable=False,
    )
    result = train(options, on_progress=progress)
    if result.interrupted:
        raise KeyboardInterrupt
    trained_s = time.monotonic() - started
    gt = training.coco(held_out=True)
    emit("evaluating", model="current", name=current)
    try:
        old, old_results = _measure(current, gt, folder, args.device)
        current_figures: dict[str, Any] = {"model": current, **old.to_dict()}
    except ModelError as exc:
        old_results = []
        current_figures = {"model": current, "error": str(exc)}
    emit("evaluating", model="new", name="the new model")
    new, new_results = _measure(str(run_dir / "model.pt"), gt, folder, args.device)
    evaluation_file = {"ground_truth": gt, "current": old_results, "new": new_results}
    (run_dir / "evaluation.json").write_text(json.dumps(evaluation_file), encoding="utf-8")
    return {
        "base": base,
        "classes": training.classes,
        "train_images": len(training.train),
        "train_paths": [im.file_name for im in training.train],
        "held_out": [im.file_name for im in training.held_out],
        "counts": {k: list(v) for k, v in training.counts.items()},
        "settings": {
            "budget_s": budget,
            "epochs": None if budget is not None else options.epochs,
            "epochs_done": result.epochs_done,
            "device": args.device,
            "batch": options.batch,
            "lr": args.lr,
            "seed": options.seed,
        },
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "duration_s": round(time.monotonic() - started, 1),
        "training_s": round(trained_s, 1),
        "iterations": result.iterations,
        "evaluation": {"rule": RULE, "current": current_figures, "new": new.to_dict()},
        "adopt": _should_adopt(new, current_figures),
    }


def _ap(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _accepted(figures: dict[str, Any]) -> str:
    if not figures.get("objects"):
        return "–"
    n, of = figures["accepted"], figures["objects"]
    return f"{n / of:.0%} ({n} of {of})"


def comparison(card: dict[str, Any]) -> str:
    """The held-out figures of the current and the new model, side by side."""
    ev = card["evaluation"]
    old, new = ev["current"], ev["new"]
    rows = [("", f"current ({Path(old['model']).name})", f"new ({card.get('name', 'new')})")]
    if "error" in old:
        rows.append(("", f"not measured: {old['error']}", ""))
        old = {}
    rows.append(("mask AP", _ap(old.get("ap")), _ap(new.get("ap"))))
    rows.append(("AP50", _ap(old.get("ap50")), _ap(new.get("ap50"))))
    for name in card["classes"]:
        rows.append(
            (f"AP {name}", _ap(old.get("per_class", {}).get(name)), _ap(new["per_class"].get(name)))
        )
    rows.append(("accepted unedited", _accepted(old), _accepted(new)))
    width = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [f"held-out images: {len(card['held_out'])}; {ev['rule']}"]
    lines += ["  ".join(cell.ljust(width[i]) for i, cell in enumerate(r)).rstrip() for r in rows]
    return "\n".join(lines)


def _adoption_line(card: dict[str, Any], asked: str | None, adopted: bool) -> str:
    if adopted:
        return f"{card['name']} is now the folder's model."
    why = "" if card["adopt"] else " (its held-out AP is lower than the current model's)"
    if asked == "if-better":
        return f"{card['name']} was not made the folder's model{why}; --adopt always does."
    return f"not made the folder's model{why}; --adopt makes it so."
