"""`maskdesk merge PARTS... -o OUT.json`: one COCO file from the part files of predict runs
(shards made on other machines, or a run that was stopped), see core.parts_merge.

Exit codes as for the other commands: 0; 1 when images failed or lines were damaged (the file
is still written, what was left out is listed on stderr); 2 for a user error, as one message.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from maskdesk.cli_messages import float_arg
from maskdesk.cli_predict import check_output
from maskdesk.core.parts_merge import MergeReport, merge

EXIT_OK, EXIT_SOME_FAILED = 0, 1
LISTED = 20  # lines of failures or damage shown; the rest are counted


def add_merge_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "merge",
        help="merge the part files of predict runs into one COCO JSON",
        description=(
            "Merge part files (OUT.json.parts folders that `maskdesk predict` writes, or their "
            ".jsonl files) into one COCO JSON. Each image is written once: its last successful "
            "result, else it is listed as failed."
        ),
    )
    p.add_argument(
        "parts", nargs="+", type=Path, metavar="PARTS", help="part folders or .jsonl files"
    )
    p.add_argument(
        "-o", "--output", type=Path, required=True, metavar="OUT.json", help="COCO JSON to write"
    )
    p.add_argument(
        "--score",
        type=float_arg(lambda v: 0.0 <= v <= 1.0, "is outside 0..1"),
        default=0.5,
        help="lowest score written (0.5)",
    )
    p.set_defaults(func=run_merge)


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def summary(report: MergeReport, min_score: float) -> str:
    """One line: what was written, and what was left out."""
    text = (
        f"{_n(report.images, 'image')}, {_n(report.annotations, 'instance')} at score >= "
        f"{min_score} written to {report.output}"
    )
    if report.failed:
        text += f"; {_n(len(report.failed), 'image')} failed (left out)"
    if report.damaged:
        text += f"; {_n(len(report.damaged), 'damaged line')} skipped"
    if report.duplicates:
        text += f"; {_n(report.duplicates, 'duplicate record')} set aside"
    return text


def _list(title: str, lines: list[str]) -> None:
    """`title` and the first LISTED lines on stderr, then how many more; nothing if none."""
    if not lines:
        return
    print(title, file=sys.stderr)
    for line in lines[:LISTED]:
        print(f"  {line}", file=sys.stderr)
    if len(lines) > LISTED:
        print(f"  ... and {len(lines) - LISTED} more", file=sys.stderr)


def run_merge(args: argparse.Namespace) -> int:
    check_output(args.output)
    report = merge(args.parts, args.output, min_score=args.score)
    print(summary(report, args.score), file=sys.stderr)
    _list(
        "failed images (run predict again to retry them):",
        [f"{path}: {reason}" for path, reason in report.failed],
    )
    _list(
        "damaged lines (not records; their images may be missing):",
        [f"{file}, line {line}" for file, line in report.damaged],
    )
    return EXIT_SOME_FAILED if report.failed or report.damaged else EXIT_OK
