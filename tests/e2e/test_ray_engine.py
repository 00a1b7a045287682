"""`maskdesk predict --engine ray` (issue 15) on a local Ray the tests start themselves: the
same annotations as the local engine, every image exactly once when an actor is killed, and a
killed driver's rerun ending with the file an uninterrupted run writes.

Without Ray installed (`pip install -e '.[ray]'`) these tests skip, saying so; `.ci/run`
installs the extra and runs them with the slow tests.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from maskdesk.cli import main
from maskdesk.core.project import Project
from maskdesk.core.store import ImageStatus
from maskdesk.datasets.shapes import generate
from tests.damaged_files import truncated_jpeg

ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install -e '.[ray]'")
pytestmark = pytest.mark.slow  # a Ray start and 40 images on two actors: about a minute each

FIXTURE_MODEL = Path(__file__).resolve().parents[1] / "fixtures" / "shapes-tiny.pt"
IMAGES = 40


@pytest.fixture(scope="module")
def local_ray() -> Iterator[str]:
    """A two-CPU Ray for this module; its address, for drivers in other processes."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 shapes images and one damaged file."""
    folder = tmp_path_factory.mktemp("ray") / "pictures"
    folder.mkdir()
    for i in range(IMAGES):
        Image.fromarray(generate(21, i).image).save(folder / f"img{i}.png")
    truncated_jpeg(folder / "img7b-broken.jpg", 128, 128)
    return folder


@pytest.fixture(scope="module")
def local_run(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What the local engine writes, one torch thread like each Ray actor (the last digits
    of a score depend on how many threads share a convolution)."""
    out = tmp_path_factory.mktemp("local") / "local.json"
    code = main([*_predict(folder, out), "--threads", "1", "--no-store"])
    assert code == 1  # the damaged file failed; the rest were predicted
    return _content(out)


def _predict(source: Path, out: Path) -> list[str]:
    return ["predict", str(source), "-o", str(out), "--model", str(FIXTURE_MODEL), "--score", "0.3"]


def _content(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text())
    data["info"].pop("date_created", None)
    return data


def _list_file(folder: Path, at: Path) -> Path:
    names = sorted(p.name for p in folder.iterdir() if p.suffix in {".png", ".jpg"})
    at.write_text("".join(f"{folder / name}\n" for name in names))
    return at


def test_ray_writes_what_the_local_engine_writes(
    local_ray: str, folder: Path, local_run: dict[str, Any], tmp_path: Path
) -> None:
    copy = tmp_path / "pictures"
    copy.mkdir()
    for file in folder.iterdir():
        (copy / file.name).write_bytes(file.read_bytes())
    out = tmp_path / "ray.json"
    code = main([*_predict(copy, out), "--engine", "ray", "--workers", "2"])
    assert code == 1
    got = _content(out)
    assert len(got["images"]) == IMAGES
    assert len(got["annotations"]) >= 3 * IMAGES  # the fixture finds shapes on every image
    assert got["categories"] == local_run["categories"]
    assert got["images"] == local_run["images"]
    assert got["annotations"] == local_run["annotations"]  # boxes, scores, RLE masks, ids
    # The driver stored every result in the folder's project; the actors never opened it.
    with Project.open(copy) as project:
        records = {r.path: r for r in project.images()}
        assert len(records) == IMAGES + 1
        assert records["img7b-broken.jpg"].status is ImageStatus.FAILED
        predicted = [r for r in records.values() if r.status is ImageStatus.PRELABELED]
        assert len(predicted) == IMAGES
        assert len({r.model for r in predicted}) == 1
        stored = sum(len(project.instances(r.id)) for r in records.values())
    assert stored >= len(got["annotations"])
    assert not (tmp_path / "ray.json.parts").exists()  # merged, then removed


def _actor_pids(name: str) -> list[int]:
    """Processes of Ray actors whose title names `name` (Ray titles them ray::...)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if title.startswith("ray::") and name in title:
            pids.append(int(entry.name))
    return pids


def _records(parts: Path) -> int:
    """Image records written so far in a parts folder (every line but the headers)."""
    files = list(parts.glob("*.jsonl")) if parts.is_dir() else []
    return sum(max(0, len(f.read_bytes().splitlines()) - 1) for f in files)


def test_an_actor_killed_mid_run_is_retried_and_every_image_written_once(
    local_ray: str, folder: Path, local_run: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "killed.json"
    killed: list[int] = []

    def kill_one_actor() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and _records(tmp_path / "killed.json.parts") < 8:
            time.sleep(0.05)
        pids = _actor_pids("_Predict")
        if pids:
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])

    killer = threading.Thread(target=kill_one_actor, daemon=True)
    killer.start()
    code = main([*_predict(folder, out), "--engine", "ray", "--no-store", "--keep-parts"])
    killer.join()
    assert killed, "no prediction actor was found to kill"
    assert code == 1
    got = _content(out)
    assert [i["file_name"] for i in got["images"]] == [i["file_name"] for i in local_run["images"]]
    assert got["annotations"] == local_run["annotations"]


def test_a_killed_driver_reruns_to_the_file_of_an_uninterrupted_run(
    local_ray: str, folder: Path, local_run: dict[str, Any], tmp_path: Path
) -> None:
    listed = _list_file(folder, tmp_path / "images.txt")
    out = tmp_path / "resumed.json"
    command = [
        *_predict(listed, out),
        "--engine",
        "ray",
        "--address",
        local_ray,
    ]
    driver = subprocess.Popen(
        [sys.executable, "-m", "maskdesk", *command],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    parts = tmp_path / "resumed.json.parts"
    try:
        deadline = time.monotonic() + 300
        while _records(parts) < 10 and driver.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert driver.poll() is None, "the driver ended before it could be killed"
        driver.kill()  # SIGKILL: no handler runs, the part file may end mid-line
    finally:
        driver.wait(timeout=60)
    done = _records(parts)
    assert 10 <= done < IMAGES + 1
    assert not out.exists()
    code = main([*command, "--workers", "2"])
    assert code == 1
    got = _content(out)
    assert got == {**local_run, "images": got["images"]}  # annotations, categories, info
    assert [i["file_name"] for i in got["images"]] == [i["file_name"] for i in local_run["images"]]
