"""Shared test setup: Qt offscreen, a small thread budget for the 2-core CI machine."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
