"""Entry point: the window by default, headless sub-commands when one is named."""

from __future__ import annotations

import sys
from collections.abc import Sequence

COMMANDS = {"predict", "import", "export", "info", "train"}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and (args[0] in COMMANDS or args[0].startswith("-")):
        from maskdesk.cli import main as cli_main

        return cli_main(args)
    from maskdesk.ui.launch import launch

    return launch(args)
