"""Headless commands: predict (cli_predict), import, export, info, clear (and train, from
cli_train).

Every problem a user can cause ends as one plain message on stderr and a non-zero exit
code: 1 when some images failed but the output was written, 2 for usage, model or file
errors, 130 when interrupted. No traceback reaches the user for those.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from maskdesk import __version__
from maskdesk.cli_merge import add_merge_parser
from maskdesk.cli_messages import describe
from maskdesk.cli_predict import add_predict_parser, check_output, score_value
from maskdesk.core import images as image_io
from maskdesk.core.coco_read import parse_coco
from maskdesk.core.coco_results import build_results, read_ground_truth, write_results
from maskdesk.core.errors import MaskdeskError
from maskdesk.core.exporting import Scope, export_project, left_out_summary
from maskdesk.core.importing import import_coco
from maskdesk.core.project import Project

EXIT_OK, EXIT_SOME_FAILED, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130
COMMON_FLAGS = {"max_pixels": "--max-pixels"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="maskdesk",
        description="Mask R-CNN pre-labeling and review; COCO JSON in and out. "
        "Without a command, maskdesk [FOLDER] opens the window.",
    )
    parser.add_argument("--version", action="version", version=f"maskdesk {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--max-pixels",
        type=int,
        default=None,
        help=f"refuse images over this many pixels (default {image_io.DEFAULT_MAX_PIXELS:,})",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_predict_parser(sub, common)

    p = sub.add_parser(
        "import", parents=[common], help="bring a COCO file's annotations into a folder's project"
    )
    p.add_argument("folder", type=Path, help="the folder of images")
    p.add_argument(
        "coco", type=Path, nargs="?", metavar="COCO.json", help="the COCO file to import"
    )
    p.add_argument(
        "--labelme",
        action="store_true",
        help="import the labelme / X-AnyLabeling JSON files beside the images (no COCO file)",
    )
    p.add_argument(
        "--boxes-to-masks",
        action="store_true",
        help="make masks of box-only annotations with the model (pending review)",
    )
    p.add_argument(
        "--model",
        default=None,
        help="model for --boxes-to-masks (default: the folder's, else coco-v1)",
    )
    p.set_defaults(func=run_import)

    p = sub.add_parser("export", parents=[common], help="write a folder's annotations as COCO JSON")
    p.add_argument("folder", type=Path, help="the folder of images")
    p.add_argument("-o", "--output", type=Path, metavar="OUT.json", help="COCO JSON to write")
    p.add_argument(
        "--labelme",
        type=Path,
        metavar="DIR",
        help="write one labelme JSON per image into DIR (mask shapes) instead of COCO",
    )
    p.add_argument(
        "--polygons",
        action="store_true",
        help="polygons instead of RLE (with --labelme: instead of mask shapes; holes are lost)",
    )
    p.add_argument(
        "--score", type=score_value, default=0.5, help="lowest score of model instances (0.5)"
    )
    p.add_argument(
        "--only",
        choices=[s.value for s in Scope],
        default=Scope.ALL.value,
        help="all (default), reviewed (images marked reviewed) or accepted (instances)",
    )
    p.add_argument(
        "--results",
        action="store_true",
        help="write a COCO results list (for pycocotools' loadRes and COCOeval) instead of a "
        "dataset: one entry per instance export writes, with compressed RLE, bbox and score; "
        "instances drawn by a person get score 1.0, crowd regions are left out. Without "
        "--image-ids-from the ids are export's own: pair the list with this folder's export",
    )
    p.add_argument(
        "--image-ids-from",
        type=Path,
        metavar="GT.json",
        help="with --results: ids from this COCO dataset, images matched by file_name (as "
        "import does) and classes by name; what it lacks is left out and reported (exit 1)",
    )
    p.set_defaults(func=run_export, flags={**COMMON_FLAGS, "image_ids_from": "--image-ids-from"})

    p = sub.add_parser(
        "info", parents=[common], help="images, statuses and instance counts of a folder"
    )
    p.add_argument("folder", type=Path, help="the folder of images")
    p.add_argument(
        "--score",
        type=score_value,
        default=0.5,
        help="count what an export at this score writes (0.5, as export's default)",
    )
    p.set_defaults(func=run_info)

    p = sub.add_parser(
        "clear", parents=[common], help="remove a model's pre-labels from a folder's project"
    )
    p.add_argument("folder", type=Path, help="the folder of images")
    p.add_argument(
        "--decided",
        action="store_true",
        help="also remove model instances a person accepted or rejected",
    )
    p.add_argument("--reviewed", action="store_true", help="also clear images marked reviewed")
    p.set_defaults(func=run_clear)

    from maskdesk.cli_train import add_train_parser

    add_merge_parser(sub)
    add_train_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_ERROR
    if getattr(args, "max_pixels", None) is not None:
        image_io.DEFAULT_MAX_PIXELS = args.max_pixels
    try:
        return int(args.func(args))
    except MaskdeskError as exc:
        print(f"maskdesk: {describe(exc, getattr(args, 'flags', COMMON_FLAGS))}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("maskdesk: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


# -- import / export / info / clear -------------------------------------------------------


def run_import(args: argparse.Namespace) -> int:
    broken: list[str] = []
    if getattr(args, "labelme", False):
        from maskdesk.core.labelme import import_labelme

        with Project.open(args.folder) as project:
            report, read = import_labelme(project, args.folder)
        coco = read.coco
        broken = read.broken
        print(report.summary(args.folder, args.folder), file=sys.stderr)
        for line in broken:
            print(f"  not imported, broken labelme file {line}", file=sys.stderr)
    elif args.coco is None:
        print("maskdesk: import needs a COCO file, or --labelme", file=sys.stderr)
        return EXIT_ERROR
    else:
        coco = parse_coco(args.coco)
        with Project.open(args.folder) as project:
            report = import_coco(project, coco, args.coco)
        print(report.summary(args.coco, args.folder), file=sys.stderr)
    boxes = getattr(coco, "box_only", [])
    if boxes and not getattr(args, "boxes_to_masks", False):
        print(
            f"  {len(boxes)} box-only annotations (no mask): add --boxes-to-masks to make "
            "masks of them with the model",
            file=sys.stderr,
        )
    elif boxes:
        from maskdesk.cli_predict import folders_model
        from maskdesk.inference.box_masks import boxes_to_masks, load_box_predictor

        predictor = load_box_predictor(args.model or folders_model([args.folder]))
        with Project.open(args.folder) as project:
            made = boxes_to_masks(project, coco, predictor, max_pixels=args.max_pixels)
        print(made.summary(), file=sys.stderr)
    return EXIT_SOME_FAILED if report.not_imported or broken else EXIT_OK


def run_export(args: argparse.Namespace) -> int:
    if args.output is None and getattr(args, "labelme", None) is None:
        print("maskdesk: export needs -o OUT.json, or --labelme DIR", file=sys.stderr)
        return EXIT_ERROR
    if args.results or args.image_ids_from is not None:
        return run_results(args)
    if getattr(args, "labelme", None) is not None:
        from maskdesk.core.labelme_write import export_labelme

        with Project.open(args.folder) as project:
            done = export_labelme(
                project,
                args.labelme,
                min_score=args.score,
                scope=Scope(args.only),
                polygons=args.polygons,
            )
        print(
            f"{done.files} labelme files, {done.shapes} shapes written to {args.labelme}",
            file=sys.stderr,
        )
        return EXIT_OK
    check_output(args.output)
    with Project.open(args.folder) as project:
        exported = export_project(
            project,
            args.output,
            polygons=args.polygons,
            min_score=args.score,
            scope=Scope(args.only),
        )
    data = exported.data
    which = {
        "all": f"instances at score >= {args.score}, accepted and human ones at any score",
        "reviewed": f"of reviewed images only, at score >= {args.score}",
        "accepted": "accepted instances only",
    }[args.only]
    print(
        f"{len(data['images'])} images, {len(data['annotations'])} annotations ({which}) "
        f"written to {args.output}",
        file=sys.stderr,
    )
    if exported.left_out:
        print(left_out_summary(exported.left_out), file=sys.stderr)
        return EXIT_SOME_FAILED
    return EXIT_OK


def run_results(args: argparse.Namespace) -> int:
    if not args.results:
        raise MaskdeskError("--image-ids-from goes with --results; add --results.")
    if args.polygons:
        raise MaskdeskError("A results list holds RLE masks only; leave out --polygons.")
    check_output(args.output)
    gt_path = args.image_ids_from
    if gt_path is not None and gt_path.resolve() == args.output.resolve():
        raise MaskdeskError(f"{args.output} is the ground truth; write the results elsewhere (-o).")
    gt = None if gt_path is None else read_ground_truth(gt_path)
    with Project.open(args.folder) as project:
        report = build_results(
            project, min_score=args.score, scope=Scope(args.only), ground_truth=gt
        )
    write_results(report.entries, args.output)
    print(report.summary(args.output), file=sys.stderr)
    return EXIT_SOME_FAILED if report.left_out else EXIT_OK


def run_info(args: argparse.Namespace) -> int:
    with Project.open(args.folder) as project:
        counts = project.counts(args.score)
        print(f"folder: {project.folder}")
        print(f"project: {project.store_path}")
        if project.store_note:
            print(project.store_note)
        missing = f"; {counts['missing']} missing (their work is kept)" if counts["missing"] else ""
        print(f"images: {counts['images']}{missing}")
        for status, n in counts["status"].items():
            print(f"  {status}: {n}")
        review = ", ".join(f"{k} {v}" for k, v in counts["review"].items())
        print(f"instances stored: {counts['instances']} ({review})")
        print(
            f"exported at score >= {args.score}: {counts['exported']} instances on "
            f"{counts['listed']} images (what `maskdesk export --score {args.score}` writes)"
        )
        for name, n in counts["categories"].items():
            print(f"  {name}: {n}")
    return EXIT_OK


def run_clear(args: argparse.Namespace) -> int:
    with Project.open(args.folder) as project:
        removed, images = project.clear_predictions(decided=args.decided, reviewed=args.reviewed)
    kind = "model instances" if args.decided else "pending model instances"
    print(f"{removed} {kind} removed from {images} images of {args.folder}", file=sys.stderr)
    return EXIT_OK
