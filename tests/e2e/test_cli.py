"""The command line as a user drives it: real folders, real project stores, real JSON files."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from maskdesk import __version__
from maskdesk.cli import main
from maskdesk.core.categories import Category
from maskdesk.core.instances import Instance, Origin, Review
from maskdesk.core.masks import CropMask
from maskdesk.core.project import ImageStatus, Project
from tests.damaged_files import truncated_jpeg

REPO = Path(__file__).resolve().parents[2]
FIXTURE_MODEL = REPO / "tests" / "fixtures" / "shapes-tiny.pt"
MODEL = str(FIXTURE_MODEL)


def _disc(cx: int, cy: int, r: int, h: int, w: int) -> CropMask:
    yy, xx = np.mgrid[:h, :w]
    return CropMask.from_full((xx - cx) ** 2 + (yy - cy) ** 2 <= r * r)


@pytest.fixture
def labelled_folder(tmp_path: Path) -> Path:
    """A folder with two photos (one in a subfolder) and a project holding three instances."""
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)).save(folder / "a.png")
    Image.fromarray(rng.integers(0, 255, (50, 40, 3), dtype=np.uint8)).save(folder / "sub/b.png")
    with Project.open(folder) as project:
        project.ensure_categories([Category(1, "circle"), Category(2, "square")])
        a = project.image_by_path("a.png")
        b = project.image_by_path("sub/b.png")
        assert a is not None and b is not None
        project.add_instance(a.id, Instance(1, _disc(20, 20, 8, 60, 80), score=0.9))
        project.add_instance(a.id, Instance(2, _disc(60, 40, 10, 60, 80), score=0.3))
        project.add_instance(
            b.id,
            Instance(2, _disc(20, 25, 6, 50, 40), origin=Origin.HUMAN, review=Review.ACCEPTED),
        )
    return folder


def test_version_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"maskdesk {__version__}"


def test_export_writes_what_a_user_kept(labelled_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    assert main(["export", str(labelled_folder), "-o", str(out)]) == 0
    data = json.loads(out.read_text())
    assert sorted(im["file_name"] for im in data["images"]) == ["a.png", "sub/b.png"]
    # the 0.3-score prediction is under the default 0.5; the human one has no score
    assert len(data["annotations"]) == 2
    coco = COCO(str(out))
    assert {c["name"] for c in coco.loadCats(coco.getCatIds())} == {"circle", "square"}

    out_all = tmp_path / "all.json"
    assert main(["export", str(labelled_folder), "-o", str(out_all), "--score", "0.1"]) == 0
    assert len(json.loads(out_all.read_text())["annotations"]) == 3


def test_export_import_export_is_identical(labelled_folder: Path, tmp_path: Path) -> None:
    first = tmp_path / "first.json"
    assert main(["export", str(labelled_folder), "-o", str(first), "--score", "0"]) == 0
    copy = tmp_path / "copy"
    shutil.copytree(labelled_folder, copy, ignore=shutil.ignore_patterns(".maskdesk"))
    assert main(["import", str(copy), str(first)]) == 0
    # a second import of the same file adds nothing
    assert main(["import", str(copy), str(first)]) == 0
    second = tmp_path / "second.json"
    assert main(["export", str(copy), "-o", str(second), "--score", "0"]) == 0
    a, b = json.loads(first.read_text()), json.loads(second.read_text())
    for data in (a, b):
        data["info"].pop("date_created", None)
    assert a == b
    assert len(b["annotations"]) == 3


def test_import_reports_unmatched_and_escaping_names(
    labelled_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "source.json"
    assert main(["export", str(labelled_folder), "-o", str(source), "--score", "0"]) == 0
    data = json.loads(source.read_text())
    data["images"][0]["file_name"] = "missing.png"
    data["images"][1]["file_name"] = "../../etc/b.png"
    source.write_text(json.dumps(data))
    capsys.readouterr()
    assert main(["import", str(labelled_folder), str(source)]) == 1
    err = capsys.readouterr().err
    assert "missing.png" in err
    assert "../../etc/b.png" in err


def test_info_counts_statuses_and_categories(
    labelled_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Project.open(labelled_folder) as project:
        b = project.image_by_path("sub/b.png")
        assert b is not None
        project.set_status(b.id, ImageStatus.REVIEWED)
    assert main(["info", str(labelled_folder)]) == 0
    out = capsys.readouterr().out
    assert str(labelled_folder / ".maskdesk") in out
    lines = out.splitlines()
    start = lines.index("images: 2")
    assert lines[start + 1 : start + 5] == [
        "  new: 1",
        "  pre-labeled: 0",
        "  reviewed: 1",
        "  failed: 0",
    ]
    # three stored; at the default 0.5 the 0.3 square is not exported: one circle, one square
    assert lines[start + 5 :] == [
        "instances stored: 3 (pending 2, accepted 1, rejected 0)",
        "exported at score >= 0.5: 2 instances on 2 images "
        "(what `maskdesk export --score 0.5` writes)",
        "  circle: 1",
        "  square: 1",
    ]
    assert main(["info", str(labelled_folder), "--score", "0.2"]) == 0
    assert "  square: 2" in capsys.readouterr().out.splitlines()


def test_bad_json_is_a_message_not_a_traceback(labelled_folder: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    proc = subprocess.run(
        [sys.executable, "-m", "maskdesk", "import", str(labelled_folder), str(bad)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "bad.json" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_weights_offline_exit_2_with_instructions(tmp_path: Path) -> None:
    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((32, 32, 3), dtype=np.uint8)).save(image)
    env = {"TORCH_HOME": str(tmp_path / "torch"), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "maskdesk",
            "predict",
            str(image),
            "-o",
            str(tmp_path / "o.json"),
            "--offline",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert str(tmp_path / "torch") in proc.stderr  # where to put the file
    assert "--model" in proc.stderr
    assert not (tmp_path / "o.json").exists()


def test_unwritable_output_is_refused_before_any_work(
    labelled_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "no such folder" / "out.json"
    code = main(["predict", str(labelled_folder), "-o", str(out), "--model", "/nonexistent.pt"])
    assert code == 2
    err = capsys.readouterr().err
    assert "no such folder" in err
    assert "nonexistent.pt" not in err  # refused before the model was even looked at
    assert main(["export", str(labelled_folder), "-o", str(out)]) == 2


def test_score_outside_zero_to_one_is_a_usage_error(labelled_folder: Path, tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["export", str(labelled_folder), "-o", str(tmp_path / "o.json"), "--score", "5"])
    assert exit_info.value.code == 2


needs_fixture = pytest.mark.skipif(
    not FIXTURE_MODEL.exists(), reason="fixture model not trained yet (tests/fixtures/README.md)"
)


@needs_fixture
def test_predict_folder_fills_the_project_and_skips_reviewed(tmp_path: Path) -> None:
    from maskdesk.datasets.shapes import main as shapes_main

    shapes_main([str(tmp_path / "set"), "--count", "4", "--seed", "123"])
    folder = tmp_path / "set" / "images"
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with Project.open(folder) as project:
        first = next(r for r in project.images() if r.path != "broken.png")
        project.set_status(first.id, ImageStatus.REVIEWED)
    out = tmp_path / "pred.json"
    renders = tmp_path / "renders"
    code = main(
        [
            "predict",
            str(folder),
            "-o",
            str(out),
            "--model",
            str(FIXTURE_MODEL),
            "--render",
            str(renders),
        ]
    )
    assert code == 1  # the broken file failed, the rest worked
    data = json.loads(out.read_text())
    assert len(data["images"]) == 4
    assert len(data["annotations"]) > 4
    assert all(a["score"] >= 0.5 for a in data["annotations"])
    # the reviewed image is listed with its work but not predicted (nor drawn) again
    assert len(list(renders.glob("*.jpg"))) == 3
    with Project.open(folder) as project:
        statuses = {r.path: r.status for r in project.images()}
        assert statuses["broken.png"] is ImageStatus.FAILED
        assert statuses[first.path] is ImageStatus.REVIEWED
        assert project.instances(first.id) == []
        others = [r for r in project.images() if r.path not in ("broken.png", first.path)]
        assert all(r.status is ImageStatus.PRELABELED for r in others)
        # the store keeps low-score predictions too, for later thresholds
        stored = [i for r in others for i in project.instances(r.id)]
        reviewed_id = next(im["id"] for im in data["images"] if im["file_name"] == first.path)
        exported = [a for a in data["annotations"] if a["image_id"] != reviewed_id]
        assert len(stored) > len(exported)
        assert min(i.score for i in stored if i.score is not None) < 0.5


@needs_fixture
def test_export_leaves_out_a_failed_image_without_work_and_names_it(
    labelled_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    truncated_jpeg(labelled_folder / "sub" / "broken.jpg", 80, 60, seed=5)
    truncated_jpeg(labelled_folder / "drawn.jpg", 80, 60, seed=5)
    with Project.open(labelled_folder) as project:
        drawn = project.image_by_path("drawn.jpg")
        assert drawn is not None
        project.add_instance(
            drawn.id,
            Instance(1, _disc(30, 30, 9, 60, 80), origin=Origin.HUMAN, review=Review.ACCEPTED),
        )
    # predict finds the two JPEGs damaged and marks them failed, as a person would meet it
    predicted = tmp_path / "p.json"
    assert main(["predict", str(labelled_folder), "-o", str(predicted), "--model", MODEL]) == 1
    capsys.readouterr()

    out = tmp_path / "out.json"
    assert main(["export", str(labelled_folder), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    data = json.loads(out.read_text())
    names = {im["id"]: im["file_name"] for im in data["images"]}
    assert sorted(names.values()) == ["a.png", "drawn.jpg", "sub/b.png"]
    on_drawn = [a for a in data["annotations"] if names[a["image_id"]] == "drawn.jpg"]
    assert [(a["area"], a["maskdesk"]["origin"]) for a in on_drawn] == [
        (int(_disc(30, 30, 9, 60, 80).area), "human")
    ]
    lines = err.splitlines()
    assert lines[0].startswith(f"3 images, {len(data['annotations'])} annotations")
    assert lines[1].startswith("left out 1 image that failed and holds no person's work")
    assert "sub/broken.jpg (" in lines[1] and "truncated" in lines[1]
    assert "drawn.jpg" not in lines[1]
