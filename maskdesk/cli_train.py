"""`maskdesk train`: the command-line face of inference/training.py.

Kept apart from cli.py, and free of torch at import time, so `maskdesk --help` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from maskdesk.core.errors import MaskdeskError

EXIT_OK, EXIT_ERROR, EXIT_INTERRUPTED = 0, 2, 130


def add_train_parser(subparsers: Any) -> None:
    """Register the "train" sub-command on an argparse sub-parsers object."""
    p = subparsers.add_parser(
        "train",
        help="fine-tune a model (or train the tiny one) on a COCO file",
        description=(
            "Train on a COCO file. MODEL.pt always holds the best-validated weights so far "
            "(the latest ones before the first validation); Ctrl-C keeps it usable and writes "
            "MODEL.pt.resume.pt, which --resume MODEL.pt continues from."
        ),
    )
    p.add_argument("--coco", type=Path, required=True, metavar="ANN.json")
    p.add_argument(
        "--images",
        type=Path,
        required=True,
        metavar="DIR",
        help="folder the COCO file names are relative to",
    )
    p.add_argument("-o", "--output", type=Path, required=True, metavar="MODEL.pt")
    p.add_argument(
        "--base",
        default="coco-v1",
        help="coco-v1 (default), coco-v2, tiny (from scratch) or a checkpoint PATH",
    )
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument(
        "--lr",
        type=float,
        default=None,
        help="learning rate (0.02 from scratch, 0.005 when fine-tuning)",
    )
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument(
        "--val-fraction",
        type=float,
        default=0.1,
        help="share of images held out to measure mask AP after each epoch",
    )
    p.add_argument(
        "--resume",
        type=Path,
        default=None,
        metavar="CKPT",
        help="continue an interrupted run (its MODEL.pt or MODEL.pt.resume.pt)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="CPU threads for torch (2)")
    p.add_argument("--workers", type=int, default=0, help="image loading processes (0)")
    p.add_argument("--offline", action="store_true", help="never download base weights")
    p.add_argument(
        "--log-every",
        type=int,
        default=1,
        metavar="N",
        help="print a progress line every N iterations (1)",
    )
    p.set_defaults(func=run_train)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _validate(args: argparse.Namespace) -> None:
    if args.epochs < 1 or args.batch < 1:
        raise MaskdeskError("--epochs and --batch must be at least 1.")
    if not 0.0 <= args.val_fraction < 1.0:
        raise MaskdeskError("--val-fraction must be at least 0 and below 1.")
    if args.lr is not None and args.lr <= 0:
        raise MaskdeskError("--lr must be positive.")


def run_train(args: argparse.Namespace) -> int:
    """Run training with progress on stderr; exit 0, 2 on a user error, 130 on Ctrl-C."""
    from maskdesk.inference.training import TrainOptions, TrainProgress, resume_path_for, train

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
        _validate(args)
        options = TrainOptions(
            coco=args.coco,
            images=args.images,
            output=args.output,
            base=args.base,
            epochs=args.epochs,
            batch=args.batch,
            lr=args.lr,
            device=args.device,
            val_fraction=args.val_fraction,
            resume=args.resume,
            seed=args.seed,
            workers=args.workers,
            threads=args.threads,
            offline=args.offline,
        )
        result = train(options, on_progress=on_progress)
    except MaskdeskError as exc:
        print(f"maskdesk: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:  # only reaches here outside the training loop
        print("maskdesk: interrupted before training started; nothing written.", file=sys.stderr)
        return EXIT_INTERRUPTED
    for reason, count in sorted(result.skipped.items()):
        print(f"skipped {count} annotations: {reason}", file=sys.stderr)
    if result.interrupted:
        print(
            f"maskdesk: interrupted after {result.iterations} iterations; usable model in "
            f"{result.output}, training state in "
            f"{result.resume_path or resume_path_for(args.output)} "
            f"(continue with --resume {result.output})",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    best = "n/a" if result.best_ap is None else f"{result.best_ap:.3f}"
    print(
        f"trained {result.iterations} iterations ({result.epochs_done} epochs) on "
        f"{result.train_images} images; best val mask AP {best}; model written to {result.output}",
        file=sys.stderr,
    )
    return EXIT_OK
