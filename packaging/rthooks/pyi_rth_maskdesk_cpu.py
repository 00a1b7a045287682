"""Runtime hook of CPU bundles built from CUDA torch wheels: hide the GPUs from torch.

Such a bundle keeps only the CUDA libraries torch links at start-up (packaging/README.md,
"CUDA"); the ones it loads to run on a GPU (cuDNN's engines, ...) are left out. With no GPU
visible, `--device auto` picks the CPU and `--device cuda` says plainly that there is none,
instead of failing half-way through a convolution. A bundle built with --keep-cuda has no
such hook.
"""

import os

os.environ["CUDA_VISIBLE_DEVICES"] = ""
