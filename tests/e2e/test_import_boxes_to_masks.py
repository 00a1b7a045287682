"""`import --boxes-to-masks`: a detection file (boxes only) becomes pending model masks of the
file's classes, checked against the shapes generator's exact ground truth."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_util

from maskdesk import cli
from maskdesk.core.instances import Origin, Review
from maskdesk.core.project import ImageStatus, Project
from maskdesk.datasets import shapes
from maskdesk.datasets.reviewing import write_folder

FIXTURE = Path(__file__).parents[1] / "fixtures" / "shapes-tiny.pt"
SEED = 1000  # held out: the fixture was trained on seed 0
COUNT = 4


def _detection_file(folder: Path, names: list[str], path: Path) -> dict[str, list]:
    """A COCO file with only boxes (segmentation []); returns the truth per name."""
    images, anns, truth = [], [], {}
    for i, name in enumerate(names):
        sample = shapes.generate(SEED, i)
        h, w = sample.image.shape[:2]
        images.append({"id": i + 1, "file_name": name, "width": w, "height": h})
        truth[name] = []
        for shape, visible in zip(sample.shapes, sample.visible, strict=True):
            x, y, bw, bh = mask_util.toBbox(
                mask_util.encode(np.asfortranarray(visible.astype(np.uint8)))
            ).tolist()
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": i + 1,
                    "category_id": shape.category_id,
                    "bbox": [x, y, bw, bh],
                    "segmentation": [],
                    "area": bw * bh,
                    "iscrowd": 0,
                }
            )
            truth[name].append((shapes.CLASSES[shape.category_id - 1], visible))
    cats = [{"id": i + 1, "name": n} for i, n in enumerate(shapes.CLASSES)]
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return truth


def _run(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = cli.main(argv)
    return code, err.getvalue()


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def test_boxes_become_pending_masks_of_the_files_class(tmp_path: Path) -> None:
    folder = tmp_path / "shapes"
    names = write_folder(folder, COUNT, SEED, shapes.CLASSES)
    coco = tmp_path / "boxes.json"
    truth = _detection_file(folder, names, coco)
    n_boxes = sum(len(v) for v in truth.values())

    code, out = _run(
        ["import", str(folder), str(coco), "--boxes-to-masks", "--model", str(FIXTURE)]
    )
    assert code == 0, out
    assert f"{n_boxes} boxes made into masks on {COUNT} images (pending review)" in out

    ious = []
    with Project.open(folder) as project:
        names_of = {c.id: c.name for c in project.categories}
        for name in names:
            record = project.image_by_path(name)
            assert record is not None
            made = project.instances(record.id)
            assert len(made) == len(truth[name])
            # Pre-labeled: a Pre-label run (new images only) leaves these masks alone.
            assert record.status is ImageStatus.PRELABELED
            for instance in made:
                assert instance.origin is Origin.MODEL and instance.review is Review.PENDING
                assert instance.score is not None and 0 < instance.score <= 1
            h, w = record.height, record.width
            for cls, gt in truth[name]:
                # the best mask of the box's class: each box gave exactly one
                best = max(
                    (
                        _iou(i.mask.to_full(w, h), gt)
                        for i in made
                        if names_of[i.category_id] == cls
                    ),
                    default=0.0,
                )
                ious.append(best)
    print("IoUs", sorted(round(x, 3) for x in ious))
    # measured on seed 1000: 11 of 13 boxes >= 0.87, the other two 0.67 and 0.68 (small,
    # occluded shapes)
    assert min(ious) >= 0.5, ious
    assert np.mean(np.array(ious) >= 0.7) >= 0.75, ious
    assert np.median(ious) >= 0.85, ious

    code, out = _run(
        ["import", str(folder), str(coco), "--boxes-to-masks", "--model", str(FIXTURE)]
    )
    assert code == 0, out
    assert "0 boxes made into masks" in out
    with Project.open(folder) as project:
        assert sum(len(project.instances(r.id)) for r in project.images()) == n_boxes


def test_without_the_flag_the_summary_says_how(tmp_path: Path) -> None:
    folder = tmp_path / "shapes"
    names = write_folder(folder, 2, SEED, shapes.CLASSES)
    coco = tmp_path / "boxes.json"
    truth = _detection_file(folder, names, coco)
    n_boxes = sum(len(v) for v in truth.values())

    code, out = _run(["import", str(folder), str(coco)])
    assert code == 0, out
    assert f"{n_boxes} box-only annotations (no mask): add --boxes-to-masks" in out
    with Project.open(folder) as project:
        assert all(not project.instances(r.id) for r in project.images())


def test_an_image_of_another_size_is_skipped_with_the_reason(tmp_path: Path) -> None:
    folder = tmp_path / "shapes"
    names = write_folder(folder, 2, SEED, shapes.CLASSES)
    coco = tmp_path / "boxes.json"
    truth = _detection_file(folder, names, coco)
    data = json.loads(coco.read_text())
    wrong = data["images"][0]
    wrong["width"] += 10  # the file says another size than the picture on disk has
    coco.write_text(json.dumps(data))

    code, out = _run(
        ["import", str(folder), str(coco), "--boxes-to-masks", "--model", str(FIXTURE)]
    )
    assert code != 0, out  # the import refuses the image too
    n_right = len(truth[names[1]])
    assert f"{n_right} boxes made into masks on 1 images (pending review)" in out
    assert (
        f"skipped: {names[0]}: {len(truth[names[0]])} boxes, size differs from the image on "
        f"disk: file says {wrong['width']}x{wrong['height']}" in out
    ), out
    with Project.open(folder) as project:
        counts = [len(project.instances(project.image_by_path(n).id)) for n in names]  # type: ignore[union-attr]
    assert counts == [0, n_right]


def test_cancel_stops_between_images_and_keeps_what_is_stored(tmp_path: Path) -> None:
    from maskdesk.core.coco_read import parse_coco
    from maskdesk.core.prelabel import Progress
    from maskdesk.inference.box_masks import boxes_to_masks, load_box_predictor

    folder = tmp_path / "shapes"
    names = write_folder(folder, 3, SEED, shapes.CLASSES)
    coco_path = tmp_path / "boxes.json"
    truth = _detection_file(folder, names, coco_path)
    steps: list[Progress] = []
    stored: list[str] = []
    predictor = load_box_predictor(str(FIXTURE), device="cpu")
    err = io.StringIO()
    with Project.open(folder) as project, contextlib.redirect_stderr(err):
        report = boxes_to_masks(
            project,
            parse_coco(coco_path),
            predictor,
            progress=steps.append,
            cancel=lambda: any(s.done >= 1 for s in steps),  # Cancel during the first image
            on_stored=lambda record: stored.append(record.path),
        )
        counts = [len(project.instances(project.image_by_path(n).id)) for n in names]  # type: ignore[union-attr]
    assert err.getvalue() == ""  # with a progress callback, no progress bar on stderr
    assert report.cancelled and "cancelled" in report.summary() and "cancelled" in report.line()
    assert (report.images, report.made) == (1, len(truth[names[0]]))
    assert stored == [names[0]]
    assert [(s.done, s.total) for s in steps] == [(0, 3), (1, 3)]
    assert counts == [len(truth[names[0]]), 0, 0]
