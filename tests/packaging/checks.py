"""What an installed maskdesk must do however it was installed (wheel, bundle, .deb).

Each check runs the installed command in a fresh user environment (its own HOME, XDG folders
and torch cache, outside the checkout) and compares with the source install running the
same thing in this process's interpreter.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from maskdesk import __version__

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "resources" / "samples"
FIXTURE_MODEL = ROOT / "tests" / "fixtures" / "shapes-tiny.pt"
SOURCE_INSTALL = [sys.executable, "-m", "maskdesk"]
# Qt's offscreen platform says this whenever a window is shown; it is not an error.
BENIGN_STDERR = re.compile(r"^This plugin does not support propagateSizeHints\(\)$")


def setuptools_version() -> tuple[int, ...] | None:
    """The setuptools this interpreter builds with offline, or None."""
    try:
        from importlib.metadata import version

        return tuple(int(p) for p in version("setuptools").split(".")[:2])
    except Exception:
        return None


def build_wheel(workdir: Path) -> Path:
    """The wheel of a clean copy of the project (a build folder in the checkout can hold
    files since deleted, which setuptools would put in the wheel)."""
    source = workdir / "source"
    source.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copyfile(ROOT / name, source / name)
    skip = shutil.ignore_patterns("__pycache__", ".maskdesk", "*.pyc")
    for name in ("maskdesk", "resources"):
        shutil.copytree(ROOT / name, source / name, ignore=skip)
    out = workdir / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-w",
            str(out),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = out.glob("maskdesk-*.whl")
    return wheel


def user_env(home: Path) -> dict[str, str]:
    """A user with nothing yet: empty HOME, data, config, cache and torch folders."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "XDG_", "QT_"))}
    env.pop("TORCH_HOME", None)
    for name in ("data", "config", "cache"):
        (home / name).mkdir(parents=True, exist_ok=True)
    env.update(
        HOME=str(home),
        XDG_DATA_HOME=str(home / "data"),
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_CACHE_HOME=str(home / "cache"),
        TORCH_HOME=str(home / "torch"),
        QT_QPA_PLATFORM="offscreen",
    )
    return env


def run(cmd: Sequence[str], env: dict[str, str], cwd: Path, timeout: float = 300):
    return subprocess.run(
        list(cmd), env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def snapshot(tree: Path) -> dict[str, tuple[int, int]]:
    """Every file under `tree` with its size and mtime: an install must not change."""
    return {
        str(p.relative_to(tree)): (p.lstat().st_size, p.lstat().st_mtime_ns)
        for p in tree.rglob("*")
        if not p.is_dir()
    }


def check_version(cmd: Sequence[str], env: dict[str, str], cwd: Path) -> None:
    proc = run([*cmd, "--version"], env, cwd)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, f"maskdesk {__version__}\n", "")


def copy_samples(target: Path) -> Path:
    target.mkdir(parents=True)
    for item in SAMPLES.iterdir():
        if item.suffix == ".jpg":
            shutil.copyfile(item, target / item.name)
    return target


def predict(cmd: Sequence[str], env: dict[str, str], workdir: Path) -> Path:
    """`predict` with the fixture model on a copy of the samples; the COCO file written."""
    photos = copy_samples(workdir / "photos")
    out = workdir / "out.json"
    proc = run(
        [
            *cmd,
            "predict",
            str(photos),
            "-o",
            str(out),
            "--model",
            str(FIXTURE_MODEL),
            "--device",
            "cpu",
        ],
        env,
        workdir,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (photos / ".maskdesk" / "project.sqlite").is_file()  # the folder's project
    return out


def check_coco(path: Path, reference: Path) -> None:
    """The COCO file loads in pycocotools, fits the photos and matches the source install's."""
    coco, ref = COCO(str(path)), json.loads(reference.read_text())
    images = {im["file_name"]: im for im in coco.dataset["images"]}
    assert sorted(images) == sorted(p.name for p in SAMPLES.glob("*.jpg"))
    for name, im in images.items():
        with Image.open(SAMPLES / name) as pil:
            assert (im["width"], im["height"]) == pil.size
    anns = coco.dataset["annotations"]
    assert anns, "the fixture model finds shapes in the samples"
    for ann in anns:
        im = coco.imgs[ann["image_id"]]
        mask = coco.annToMask(ann)
        assert mask.shape == (im["height"], im["width"])
        assert int(mask.sum()) == round(ann["area"])
    # Same model, same images, same torch: the same instances as the source install.
    ref_files = {im["id"]: im["file_name"] for im in ref["images"]}
    got = sorted(anns, key=lambda a: _key(a, coco.imgs[a["image_id"]]["file_name"]))
    want = sorted(ref["annotations"], key=lambda a: _key(a, ref_files[a["image_id"]]))
    assert [_key(a, coco.imgs[a["image_id"]]["file_name"])[:2] for a in got] == [
        _key(a, ref_files[a["image_id"]])[:2] for a in want
    ]
    for g, w in zip(got, want, strict=True):
        assert abs(g["score"] - w["score"]) < 1e-3
        assert mask_utils.iou([_rle(g)], [_rle(w)], [0])[0, 0] > 0.99


def _key(ann: dict, file_name: str) -> tuple[str, int, float, tuple[int, ...]]:
    return (
        file_name,
        ann["category_id"],
        -round(ann["score"], 3),
        tuple(round(v) for v in ann["bbox"]),
    )


def _rle(ann: dict) -> dict:
    seg = ann["segmentation"]
    if isinstance(seg["counts"], list):  # uncompressed RLE (crowd regions)
        return mask_utils.frPyObjects(seg, *seg["size"])
    return seg


def check_window(cmd: Sequence[str], env: dict[str, str], cwd: Path, home: Path) -> None:
    """The window opens (offscreen) on the samples' copy, runs, and quits on Ctrl-C cleanly."""
    samples_copy = home / "data" / "maskdesk" / "samples"
    store = samples_copy / ".maskdesk" / "project.sqlite"
    proc = subprocess.Popen(
        list(cmd), env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 120
        while not store.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert store.exists(), "the window never opened its folder"
        time.sleep(3)  # thumbnails, overlay: a few seconds of a running window
        assert proc.poll() is None, "the window closed by itself"
        proc.send_signal(signal.SIGINT)  # maskdesk quits on Ctrl-C as on File > Quit
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    problems = [line for line in err.splitlines() if line and not BENIGN_STDERR.match(line)]
    assert (proc.returncode, problems) == (0, []), err[-3000:]
    assert sorted(p.name for p in samples_copy.iterdir() if p.is_file()) == sorted(
        p.name for p in SAMPLES.iterdir() if p.is_file()
    )
    log = home / "data" / "maskdesk" / "logs" / "maskdesk.log"
    assert not log.exists() or "unexpected error" not in log.read_text()


def weights_message(cmd: Sequence[str], env: dict[str, str], cwd: Path) -> str:
    """Where `predict --model coco-v1 --offline` says the missing weights belong."""
    photo = copy_samples(cwd / "one")
    proc = run(
        [*cmd, "predict", str(photo), "-o", str(cwd / "w.json"), "--offline", "--no-store"],
        env,
        cwd,
    )
    assert proc.returncode == 2
    found = re.search(r"place it at (\S+\.pth)", proc.stderr)
    assert found, proc.stderr
    return found.group(1)


def check_installed_command(cmd: list[str], installed_tree: Path, tmp_path: Path) -> None:
    """What a person does with an installed maskdesk, as a new user: --version, predict with
    the fixture model (the same COCO as the source install's), the window offscreen, the
    weights cache where the source install looks; and nothing under `installed_tree` changed.
    """
    installed = snapshot(installed_tree)
    env = user_env(tmp_path / "home")
    check_version(cmd, env, tmp_path)

    (tmp_path / "installed").mkdir()
    (tmp_path / "source").mkdir()
    out = predict(cmd, env, tmp_path / "installed")
    reference = predict(SOURCE_INSTALL, user_env(tmp_path / "home2"), tmp_path / "source")
    check_coco(out, reference)

    check_window(cmd, env, tmp_path, tmp_path / "home")

    (tmp_path / "w1").mkdir()
    (tmp_path / "w2").mkdir()
    where = weights_message(cmd, env, tmp_path / "w1")
    assert where == weights_message(SOURCE_INSTALL, env, tmp_path / "w2")
    assert where.startswith(env["TORCH_HOME"] + "/hub/checkpoints/")
    assert snapshot(installed_tree) == installed  # it wrote only to the user's folders
