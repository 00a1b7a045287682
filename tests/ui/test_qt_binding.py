"""The Qt binding the project installs does not leak references to None.

PySide6 6.12.0 on Python 3.11 drops one reference to None on every Qt call that returns
nothing; a window painting for a while then aborts with "deallocating None". pyproject.toml
excludes that release; this test catches a binding with the same fault.
"""

import sys

from PySide6.QtGui import QPainterPath


def test_qt_calls_returning_nothing_keep_none_alive() -> None:
    path = QPainterPath()
    before = sys.getrefcount(None)
    for i in range(1000):
        path.lineTo(i, i)
    assert before - sys.getrefcount(None) < 10
