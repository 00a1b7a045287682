"""The bundle's entry point: `maskdesk.app.main`, with multiprocessing made frozen-safe.

`maskdesk train --workers N` starts image-loading processes; in a frozen program those
re-run this executable, and `freeze_support` turns them into workers instead of new apps.
"""

import multiprocessing
import sys

from maskdesk.app import main

if __name__ == "__main__":
    multiprocessing.freeze_support()
    sys.exit(main())
