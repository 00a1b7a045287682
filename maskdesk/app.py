"""Entry point: the window by default, headless sub-commands when one is named.

`maskdesk [FOLDER]` opens the window; `maskdesk COMMAND ...` runs a headless command;
`maskdesk help [COMMAND]` prints the command-line help. A first word that is neither a
command nor an existing path is a usage error: a typo must not open a window on a folder
that does not exist.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Sequence
from pathlib import Path

EXIT_USAGE = 2
WINDOW_OPTIONS = {"--model", "--device"}  # maskdesk [FOLDER] [--model M] [--device D]


def _sub_commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The parser's sub-commands by name, in the order the help lists them."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def commands() -> list[str]:
    """The headless commands, from the CLI parser itself (building it does not import torch)."""
    from maskdesk.cli import build_parser

    return list(_sub_commands(build_parser()))


def _unknown(word: str, known: Sequence[str], problem: str) -> int:
    close = difflib.get_close_matches(word, known, n=1)
    hint = f"; did you mean {close[0]}?" if close else "."
    print(
        f"maskdesk: {word!r} {problem}{hint}\n"
        "usage: maskdesk [FOLDER] [--model M] [--device D]  open the window (on FOLDER)\n"
        "       maskdesk COMMAND [ARGS ...]                 run a headless command\n"
        "       maskdesk help [COMMAND]                     describe them\n"
        f"commands: {', '.join(known)}",
        file=sys.stderr,
    )
    return EXIT_USAGE


def _help(topics: Sequence[str]) -> int:
    from maskdesk.cli import build_parser

    parser = build_parser()
    subs = _sub_commands(parser)
    if not topics:
        parser.print_help()
        return 0
    if topics[0] not in subs:
        return _unknown(topics[0], list(subs), "is not a command")
    subs[topics[0]].print_help()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "help":
        return _help(args[1:])
    if args and args[0].startswith("-") and args[0].split("=")[0] not in WINDOW_OPTIONS:
        from maskdesk.cli import main as cli_main

        return cli_main(args)
    if args and not args[0].startswith("-"):
        known = commands()
        if args[0] in known:
            from maskdesk.cli import main as cli_main

            return cli_main(args)
        if not Path(args[0]).exists():
            return _unknown(args[0], known, "is neither a command nor an existing file or folder")
    from maskdesk.ui.launch import launch

    return launch(args)
