"""The window as a user sees it: rows in the image list, masks on the picture."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from maskdesk.core.categories import Category
from maskdesk.core.instances import Instance
from maskdesk.core.masks import CropMask
from maskdesk.core.project import Project
from maskdesk.ui.main_window import MainWindow


def _grey_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    grey = np.full((60, 80, 3), 128, dtype=np.uint8)
    Image.fromarray(grey).save(folder / "img10.png")
    Image.fromarray(grey).save(folder / "img2.png")
    Image.fromarray(grey).save(folder / "sub" / "img2.png")
    bits = np.zeros((20, 20), dtype=bool)
    bits[5:15, 5:15] = True
    with Project.open(folder) as project:
        project.ensure_categories([Category(1, "square")])
        record = project.image_by_path("img2.png")
        assert record is not None
        project.add_instance(record.id, Instance(1, CropMask(30, 20, bits), score=0.9))
    return folder


def test_window_lists_images_and_paints_masks(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    window = MainWindow()
    qtbot.addWidget(window)
    window.open_folder(_grey_folder(tmp_path))
    rows = [window.image_list.item(i).text() for i in range(window.image_list.count())]
    assert [r.split()[0] for r in rows] == ["img2.png", "img10.png", "sub/img2.png"]

    window.image_list.setCurrentRow(0)
    picture = window.picture.pixmap().toImage()
    assert (picture.width(), picture.height()) == (80, 60)
    inside = picture.pixelColor(40, 30)  # centre of the 10x10 square at (35, 25)
    outside = picture.pixelColor(5, 55)
    assert (outside.red(), outside.green(), outside.blue()) == (128, 128, 128)
    assert (inside.red(), inside.green(), inside.blue()) != (128, 128, 128)
    assert "1 instances" in window.statusBar().currentMessage()

    window.image_list.setCurrentRow(1)
    plain = window.picture.pixmap().toImage().pixelColor(40, 30)
    assert (plain.red(), plain.green(), plain.blue()) == (128, 128, 128)
