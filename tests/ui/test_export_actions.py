"""File > Export COCO and Export picture as a person uses them: the real window, real files, a
real project store; the file dialogs answer as the person would."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from maskdesk.cli import main
from maskdesk.core.categories import Category
from maskdesk.core.exporting import Scope
from maskdesk.core.images import load_rgb
from maskdesk.core.instances import Instance, Origin
from maskdesk.core.masks import CropMask
from maskdesk.core.project import ImageStatus, Project
from maskdesk.ui import dialogs
from maskdesk.ui.main_window import MainWindow
from tests.ui.test_dialogs import when_modal

FIXTURE_MODEL = Path(__file__).resolve().parents[1] / "fixtures" / "shapes-tiny.pt"
GREY = 128


def _truncated_jpeg(path: Path) -> None:
    """A JPEG cut in half: its header (and size) reads, its pixels do not."""
    buffer = io.BytesIO()
    pixels = np.random.default_rng(4).integers(0, 255, (60, 80, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buffer, "JPEG")
    data = buffer.getvalue()
    path.write_bytes(data[: len(data) // 2])


def _folder(tmp_path: Path) -> Path:
    """photos/good.png, grey with one 0.9 square on it."""
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(np.full((60, 80, 3), GREY, dtype=np.uint8)).save(folder / "good.png")
    with Project.open(folder) as project:
        project.ensure_categories([Category(1, "square")])
        record = project.image_by_path("good.png")
        assert record is not None
        project.add_instance(record.id, Instance(1, CropMask(30, 20, np.ones((10, 10), bool)), 0.9))
    return folder


@pytest.mark.skipif(not FIXTURE_MODEL.exists(), reason="fixture model not trained yet")
def test_export_coco_leaves_out_a_failed_image_and_says_so(
    window: MainWindow, qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _folder(tmp_path)
    _truncated_jpeg(folder / "broken.jpg")
    _truncated_jpeg(folder / "drawn.jpg")
    with Project.open(folder) as project:
        drawn = project.image_by_path("drawn.jpg")
        assert drawn is not None
        human = Instance(1, CropMask(5, 6, np.ones((7, 9), bool)), origin=Origin.HUMAN)
        project.add_instance(drawn.id, human)
    # predict meets the damaged JPEGs and marks them failed
    args = ["predict", str(folder), "-o", str(tmp_path / "p.json"), "--model", str(FIXTURE_MODEL)]
    assert main(args) == 1
    with Project.open(folder) as project:
        assert {r.path: r.status for r in project.images()}["broken.jpg"] is ImageStatus.FAILED

    window.open_folder(folder)
    out = tmp_path / "out.json"
    choice = dialogs.ExportChoice(out, polygons=False, scope=Scope.ALL, min_score=0.5)
    monkeypatch.setattr(dialogs, "ask_export", lambda *a: choice)
    seen: list[tuple[str, str]] = []
    when_modal(lambda box: seen.append((box.objectName(), box.text())))
    window.acts["actionExportCoco"].trigger()

    data = json.loads(out.read_text())
    names = {im["id"]: im["file_name"] for im in data["images"]}
    assert sorted(names.values()) == ["drawn.jpg", "good.png"]
    on_drawn = [a for a in data["annotations"] if names[a["image_id"]] == "drawn.jpg"]
    assert [(a["bbox"], a["maskdesk"]["origin"]) for a in on_drawn] == [([5, 6, 9, 7], "human")]
    assert len(seen) == 1
    name, text = seen[0]
    assert name == "exportLeftOut"
    assert text.startswith(f"2 images, {len(data['annotations'])} annotations written to {out}")
    assert "left out 1 image that failed and holds no person's work" in text
    assert "broken.jpg (" in text and "truncated" in text and "drawn.jpg" not in text


def _save_dialog(monkeypatch: pytest.MonkeyPatch, answers: list[Path | None]) -> list[Path]:
    """getSaveFileName answering from `answers` (None: the proposal itself); returns the
    proposals it was shown."""
    proposed: list[Path] = []

    def fake_save(parent: QWidget, caption: str, start: str, filters: str) -> tuple[str, str]:
        proposed.append(Path(start))
        answer = answers.pop(0)
        return str(answer or start), filters

    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(fake_save))
    return proposed


def test_export_picture_proposes_a_place_outside_the_image_folder(
    window: MainWindow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _folder(tmp_path)
    window.open_folder(folder)
    elsewhere = tmp_path / "pictures"
    elsewhere.mkdir()
    proposed = _save_dialog(monkeypatch, [None, elsewhere / "mine.png", None])

    window.acts["actionExportPicture"].trigger()
    assert proposed == [tmp_path / "good-masks.png"]  # beside the image folder, not in it
    picture = load_rgb(tmp_path / "good-masks.png")
    assert picture.shape == (60, 80, 3)
    assert tuple(picture[5, 5]) == (GREY, GREY, GREY)
    assert tuple(picture[25, 35]) != (GREY, GREY, GREY)  # the square is drawn

    window.acts["actionExportPicture"].trigger()  # the person picks another folder once...
    window.acts["actionExportPicture"].trigger()
    assert proposed[1:] == [tmp_path / "good-masks.png", elsewhere / "good-masks.png"]
    assert (elsewhere / "mine.png").is_file()  # ...and the next proposal is there
    with Project.open(folder) as project:
        assert [r.path for r in project.images()] == ["good.png"]


@pytest.mark.parametrize("save_inside", [False, True])
def test_export_picture_into_the_image_folder_asks_first(
    window: MainWindow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, save_inside: bool
) -> None:
    folder = _folder(tmp_path)
    window.open_folder(folder)
    inside = folder / "good-masks.png"
    proposed = _save_dialog(monkeypatch, [inside, None])
    questions: list[str] = []

    def confirm(parent: QWidget, title: str, text: str) -> bool:
        questions.append(text)
        return save_inside

    monkeypatch.setattr(dialogs, "confirm", confirm)
    window.acts["actionExportPicture"].trigger()

    assert len(questions) == 1
    assert str(inside) in questions[0] and "becomes one of its images" in questions[0]
    if save_inside:  # the person insisted: written where asked, asked once
        assert inside.is_file() and proposed == [tmp_path / "good-masks.png"]
    else:  # No: the dialog comes back at the proposal outside the folder
        assert not inside.exists()
        assert proposed == [tmp_path / "good-masks.png"] * 2
        assert (tmp_path / "good-masks.png").is_file()


def test_the_left_out_message_names_the_first_ten_and_details_all(qtbot) -> None:
    from maskdesk.core.exporting import LeftOut

    left_out = [LeftOut(f"img{i}.jpg", "truncated") for i in range(12)]
    seen: list[tuple[str, str]] = []

    def read(box: QWidget) -> None:
        assert isinstance(box, QMessageBox)
        seen.append((box.text(), box.detailedText()))

    when_modal(read)
    dialogs.show_left_out(None, "3 images, 4 annotations written to x.json", left_out)
    text, details = seen[0]
    assert "img9.jpg (truncated); and 2 more" in text and "img10.jpg" not in text
    assert details.splitlines() == [f"img{i}.jpg: truncated" for i in range(12)]


def test_a_picture_is_never_proposed_where_it_would_become_an_image(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    # a remembered folder inside the image folder is passed over; so is one that is gone
    assert dialogs.picture_default(folder, "sub/a.png", str(folder / "sub")) == (
        tmp_path / "sub-a-masks.png"
    )
    assert dialogs.picture_default(folder, "a.png", str(tmp_path / "gone")) == (
        tmp_path / "a-masks.png"
    )
    assert dialogs.becomes_image(folder, folder / "sub" / "a-masks.JPG")
    assert not dialogs.becomes_image(folder, folder / ".maskdesk" / "a-masks.png")  # hidden
    assert not dialogs.becomes_image(folder, folder / "notes.txt")
    assert not dialogs.becomes_image(folder, tmp_path / "a-masks.png")
