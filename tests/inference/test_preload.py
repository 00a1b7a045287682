"""The worker's torch import: native libraries loaded with the GIL released, the garbage
collector kept off the imported objects (inference/preload.py). Each check runs in a fresh
interpreter, since this test process has imported torch already."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import gc, json, sys
from maskdesk.inference.preload import import_torch_quietly, preload_torch
loaded = preload_torch()
torch_after_preload = "torch" in sys.modules
import_torch_quietly()
import torch
print(json.dumps({
    "loaded": loaded,
    "torch_after_preload": torch_after_preload,
    "gc_enabled": gc.isenabled(),
    "frozen": gc.get_freeze_count(),
    "sum": float(torch.ones(3).sum()),
    "mask_rcnn": "torchvision.models.detection" in sys.modules,
}))
"""


def test_torch_libraries_load_before_the_import_and_the_import_still_works() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=300
    )
    facts = json.loads(done.stdout.strip().splitlines()[-1])
    assert facts["loaded"] is True  # torch's own dlopen then finds them loaded
    assert facts["torch_after_preload"] is False  # only the libraries, not the module
    assert facts["sum"] == 3.0
    assert facts["mask_rcnn"] is True
    # The collector is back on, and the import's objects (hundreds of thousands) are out of
    # its full passes, which otherwise hold the GIL for 100 ms and more each.
    assert facts["gc_enabled"] is True
    assert facts["frozen"] > 100_000
