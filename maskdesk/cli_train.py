"""`maskdesk train`: the command-line face of inference/training.py.

Kept apart from cli.py, and free of torch at import time, so `maskdesk --help` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from maskdesk.cli_messages import describe, float_arg
from maskdesk.core.errors import MaskdeskError

EXIT_OK, EXIT_ERROR, EXIT_INTERRUPTED = 0, 2, 130

# The flag that sets each setting an error can name (MaskdeskError.setting). "model" is the
# model file that failed to load, which for train is the one given as --base.
FLAGS = {
    "model": "--base PATH",
    "base": "--base",
    "coco": "--coco",
    "images": "--images",
    "output": "-o",
    "resume": "--resume",
    "epochs": "--epochs",
    "batch": "--batch",
    "lr": "--lr",
    "device": "--device",
    "offline": "--offline",
    "seed": "--seed",
    "val_fraction": "--val-fraction",
}

# Defaults of a new run. The parser's defaults are None, so that a flag given together with
# --resume can be told apart from one left out (left out: the interrupted run's value).
DEFAULTS: dict[str, Any] = {
    "base": "coco-v1",
    "epochs": 10,
    "batch": 4,
    "lr": None,
    "seed": 0,
    "val_fraction": 0.1,
}
# These fix the validation split and the batch order, so a resumed run cannot change them.
FIXED_ON_RESUME = ("batch", "seed", "val_fraction")


def _int_at_least(low: int) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{text} is below {low}")
        return value

    return parse


_positive_float = float_arg(lambda v: v > 0, "is not above 0")
_fraction = float_arg(lambda v: 0.0 <= v < 1.0, "is not at least 0 and below 1")


def add_train_parser(subparsers: Any) -> None:
    """Register the "train" sub-command on an argparse sub-parsers object."""
    p = subparsers.add_parser(
        "train",
        help="train on a folder's reviewed images, or on a COCO file",
        description=(
            "maskdesk train FOLDER: one round on the folder's reviewed images (1 in 5 held "
            "out, by a stable hash of the path, to compare the current and the new model); the "
            "model goes to the folder's .maskdesk/models with its card, and --adopt makes it "
            "the folder's model. "
            "maskdesk train --coco ANN.json --images DIR -o MODEL.pt: train on a COCO file; "
            "MODEL.pt always holds the best-validated weights so far "
            "(the latest ones before the first validation); Ctrl-C keeps it usable and writes "
            "MODEL.pt.resume.pt. `maskdesk train --resume MODEL.pt` alone continues: the run's "
            "COCO file, images, output and settings are kept in that state."
        ),
    )
    p.add_argument(
        "folder",
        nargs="?",
        type=Path,
        help="a folder with reviewed images (instead of --coco, --images and -o)",
    )
    p.add_argument(
        "--coco",
        type=Path,
        metavar="ANN.json",
        help="COCO file with the annotations to train on (needed unless --resume)",
    )
    p.add_argument(
        "--images",
        type=Path,
        metavar="DIR",
        help="folder the COCO file names are relative to (needed unless --resume)",
    )
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="MODEL.pt",
        help="checkpoint to write; it always holds the best epoch so far (needed unless --resume)",
    )
    p.add_argument(
        "--base",
        help="coco-v1 (default), coco-v2, tiny (from scratch) or a checkpoint PATH",
    )
    p.add_argument(
        "--epochs",
        type=_int_at_least(1),
        metavar="N",
        help="passes over the training images (10); with --resume, a new total",
    )
    p.add_argument("--batch", type=_int_at_least(1), metavar="N", help="images per iteration (4)")
    p.add_argument(
        "--lr",
        type=_positive_float,
        help="learning rate (0.02 from scratch, 0.005 when fine-tuning)",
    )
    p.add_argument(
        "--device",
        default="auto",
        choices=["auto", "cpu", "cuda"],
        help="where to train: auto (a CUDA GPU when there is one; default), cpu or cuda",
    )
    p.add_argument(
        "--val-fraction",
        type=_fraction,
        metavar="F",
        help="share of images held out to measure mask AP after each epoch (0.1)",
    )
    p.add_argument(
        "--resume",
        type=Path,
        default=None,
        metavar="MODEL.pt",
        help="continue an interrupted run (its MODEL.pt or MODEL.pt.resume.pt)",
    )
    p.add_argument(
        "--seed",
        type=int,
        metavar="N",
        help="seed of the validation split, batch order and new weights (0)",
    )
    p.add_argument(
        "--threads",
        type=_int_at_least(1),
        metavar="N",
        help="CPU threads for torch (2; for a FOLDER, all cores but one, left to the window)",
    )
    p.add_argument(
        "--workers",
        type=_int_at_least(0),
        default=0,
        metavar="N",
        help="image loading processes (0: load in this one)",
    )
    p.add_argument("--offline", action="store_true", help="never download base weights")
    p.add_argument(
        "--log-every",
        type=_int_at_least(1),
        default=1,
        metavar="N",
        help="print a progress line every N iterations (1)",
    )
    folder = p.add_argument_group("training on a FOLDER")
    folder.add_argument(
        "--budget",
        type=_positive_float,
        metavar="SECONDS",
        help="train for about this long (120; --epochs trains that many passes instead)",
    )
    folder.add_argument(
        "--current",
        metavar="MODEL",
        help="the model to compare with (the folder's model, else coco-v1); also the base "
        "unless --base",
    )
    folder.add_argument(
        "--adopt",
        nargs="?",
        const="if-better",
        choices=["if-better", "always"],
        help="make the new model the folder's model if its held-out AP did not drop "
        "(always: in any case)",
    )
    folder.add_argument(
        "--json", action="store_true", help="report as JSON lines on stdout (for the window)"
    )
    p.set_defaults(func=run_train, flags=FLAGS)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _new_run(args: argparse.Namespace) -> dict[str, Any]:
    needed = [
        flag
        for key, flag in (
            ("coco", "--coco ANN.json"),
            ("images", "--images DIR"),
            ("output", "-o MODEL.pt"),
        )
        if getattr(args, key) is None
    ]
    if needed:
        raise MaskdeskError(
            f"{' and '.join(needed)} {'is' if len(needed) == 1 else 'are'} needed to start "
            "training (or --resume MODEL.pt to continue an interrupted run)."
        )
    values = {key: getattr(args, key) for key in ("coco", "images", "output")}
    for key, default in DEFAULTS.items():
        given = getattr(args, key)
        values[key] = default if given is None else given
    return values


def _resumed_run(args: argparse.Namespace, notes: list[str]) -> dict[str, Any]:
    """The interrupted run's settings, with what the command line may change changed.

    Paths, --epochs and --lr given again replace the saved ones (data moves, a run may be
    lengthened), each with a note; --batch, --seed and --val-fraction must match.
    """
    from maskdesk.inference.training import saved_settings

    saved = saved_settings(args.resume)
    for key in FIXED_ON_RESUME:
        given = getattr(args, key)
        if given is not None and given != saved[key]:
            raise MaskdeskError(
                f"The interrupted run used {FLAGS[key]} {saved[key]}; it fixes the validation "
                f"split and the batch order, so a resumed run keeps it: leave {FLAGS[key]} out "
                f"or give {saved[key]}."
            )
    values = {key: saved[key] for key in FIXED_ON_RESUME}
    for key in ("coco", "images", "output"):
        given, kept = getattr(args, key), saved.get(key)
        if given is None and kept is None:  # a state from before the settings were kept
            raise MaskdeskError(
                f"The training state for {args.resume} does not record its {FLAGS[key]} (an "
                f"older maskdesk wrote it); give {FLAGS[key]} again."
            )
        if given is not None and kept is not None and given.resolve() != kept.resolve():
            notes.append(f"{FLAGS[key]} {given} replaces the interrupted run's {kept}")
        values[key] = given if given is not None else kept
    for key in ("epochs", "lr"):
        given, kept = getattr(args, key), saved.get(key, DEFAULTS[key])
        if given is not None and given != kept:
            was = "default" if kept is None else kept
            notes.append(f"{FLAGS[key]} {given} replaces the interrupted run's {was}")
        values[key] = given if given is not None else kept
    if args.base is not None and args.base != saved.get("base"):
        notes.append("--base is not used when resuming: the weights come from the saved state")
    values["base"] = saved.get("base", DEFAULTS["base"])
    notes.append(
        f"resuming after {_count(saved['epochs_done'], 'epoch')} of {values['epochs']}: "
        f"--coco {values['coco']} --images {values['images']} -o {values['output']}"
    )
    return values


def _folder_round(args: argparse.Namespace) -> int:
    clash = [
        flag
        for key, flag in (("coco", "--coco"), ("images", "--images"), ("output", "-o"))
        if getattr(args, key) is not None
    ] + (["--resume"] if args.resume is not None else [])
    if clash:
        print(
            f"maskdesk: {' and '.join(clash)} train on a COCO file; a FOLDER round reads the "
            "folder's reviewed images and writes to its .maskdesk/models: give one or the other.",
            file=sys.stderr,
        )
        return EXIT_ERROR
    from maskdesk.cli_train_folder import run_folder

    return run_folder(args)


def run_train(args: argparse.Namespace) -> int:
    """Run training with progress on stderr; exit 0, 2 on a user error, 130 on Ctrl-C."""
    from maskdesk.inference.training import TrainOptions, TrainProgress, resume_path_for, train

    if getattr(args, "folder", None) is not None:
        return _folder_round(args)
    every = max(1, int(getattr(args, "log_every", 1)))

    def on_progress(p: TrainProgress) -> None:
        if p.kind == "iteration":
            if p.iteration % every and p.iteration != p.total_iterations:
                return
            parts = " ".join(
                f"{k.removeprefix('loss_')}={v:.3f}" for k, v in p.losses.items() if k != "loss"
            )
            print(
                f"it {p.iteration}/{p.total_iterations} epoch {p.epoch}/{p.epochs} "
                f"loss {p.losses.get('loss', 0.0):.3f} ({parts}) lr {p.lr:.4g} "
                f"{p.images_per_s:.1f} img/s ETA {_duration(p.eta_s)}",
                file=sys.stderr,
                flush=True,
            )
        else:
            ap = "n/a (no validation images)" if p.val_ap is None else f"{p.val_ap:.3f}"
            ap50 = "" if p.val_ap50 is None else f", AP50 {p.val_ap50:.3f}"
            best = "" if p.best_ap is None else f"; best {p.best_ap:.3f}"
            print(
                f"epoch {p.epoch - 1}/{p.epochs}: val mask AP {ap}{ap50}{best}",
                file=sys.stderr,
                flush=True,
            )

    try:
        notes: list[str] = []
        values = _new_run(args) if args.resume is None else _resumed_run(args, notes)
        for note in notes:
            print(f"maskdesk: {note}", file=sys.stderr)
        options = TrainOptions(
            **values,
            device=args.device,
            resume=args.resume,
            workers=args.workers,
            threads=args.threads or 2,
            offline=args.offline,
        )
        result = train(options, on_progress=on_progress)
    except MaskdeskError as exc:
        print(f"maskdesk: {describe(exc, FLAGS)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:  # only reaches here outside the training loop
        print("maskdesk: interrupted before training started; nothing written.", file=sys.stderr)
        return EXIT_INTERRUPTED
    for reason, count in sorted(result.skipped.items()):
        print(f"skipped {_count(count, 'annotation')}: {reason}", file=sys.stderr)
    if result.interrupted:
        print(
            f"maskdesk: interrupted after {_count(result.iterations, 'iteration')}; usable "
            f"model in {result.output}, training state in "
            f"{result.resume_path or resume_path_for(result.output)} "
            f"(continue with: maskdesk train --resume {result.output})",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    best = "n/a" if result.best_ap is None else f"{result.best_ap:.3f}"
    print(
        f"trained {_count(result.iterations, 'iteration')} "
        f"({_count(result.epochs_done, 'epoch')}) on {_count(result.train_images, 'image')}; "
        f"best val mask AP {best}; model written to {result.output}",
        file=sys.stderr,
    )
    return EXIT_OK
