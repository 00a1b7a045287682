"""Import torch from a worker thread without stalling the other threads.

Two things stall every other thread, the UI thread included, while torch is imported:

1. The native libraries. `import torch` loads torch/_C and with it libtorch_cpu,
libtorch_cuda and the CUDA runtime: hundreds of MB whose loading and static constructors run
inside one dlopen. Python's own import (and ctypes' CDLL) call dlopen holding the GIL, so
every other thread waits for it: a 200-300 ms stall on this machine. A ctypes call of libc's
dlopen releases the GIL for its duration. Loading the same files in the same order and with
the same flags as torch does first makes torch's own dlopen calls find them already loaded.

2. The garbage collector. The import creates about a million objects, so the collector's full
collections, each walking every object while holding the GIL, run again and again and grow
to 100-140 ms. The collector is paused for the import and the imported objects are then moved
out of its reach (`gc.freeze`): they live as long as the process anyway.

This module must not import torch at its top. Any failure leaves the work to `import torch`
as before.
"""

from __future__ import annotations

import ctypes
import gc
import glob
import importlib.util
import os
import sys

_done = False


def preload_torch() -> bool:
    """Loads torch's native libraries with the GIL released; True when they are loaded.
    Idempotent; does nothing once torch is imported."""
    global _done
    if _done or "torch" in sys.modules or not sys.platform.startswith("linux"):
        return _done
    spec = importlib.util.find_spec("torch")
    if spec is None or spec.origin is None:
        return False
    folder = os.path.dirname(spec.origin)
    extension = glob.glob(os.path.join(folder, "_C.cpython-*.so"))
    # The order and flags of torch/__init__.py: _load_global_deps() opens the global
    # dependencies with RTLD_GLOBAL, then Python opens the _C extension with its own flags.
    steps = [
        (os.path.join(folder, "lib", "libtorch_global_deps.so"), os.RTLD_LAZY | os.RTLD_GLOBAL),
        *((path, sys.getdlopenflags()) for path in extension),
    ]
    try:
        libc = ctypes.CDLL(None)
        dlopen = libc.dlopen
    except (OSError, AttributeError):
        return False
    dlopen.restype = ctypes.c_void_p
    dlopen.argtypes = [ctypes.c_char_p, ctypes.c_int]
    for path, flags in steps:
        if not os.path.isfile(path) or not dlopen(os.fsencode(path), flags):
            return False
    _done = True
    return True


def import_torch_quietly() -> None:
    """Imports torch, torchvision and the inference modules (the worker thread's first model
    load) without the stalls described above."""
    if "maskdesk.inference.predictor" in sys.modules:
        return
    preload_torch()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        import maskdesk.inference.models  # noqa: F401
        import maskdesk.inference.predictor  # noqa: F401
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()
