"""The synthetic shapes generator: seeded bytes, valid exact COCO, visible-part masks."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from pycocotools import mask as mask_util
from pycocotools.coco import COCO

from maskdesk.datasets import shapes


def _files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_same_seed_gives_the_same_bytes_and_another_seed_does_not(tmp_path: Path) -> None:
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        assert (
            shapes.main([str(tmp_path / name), "--count", "4", "--seed", str(seed), "--size", "96"])
            == 0
        )
    a, b, c = (_files(tmp_path / n) for n in "abc")
    assert sorted(a) == ["annotations.json"] + [f"images/shapes_{i:05d}.png" for i in range(4)]
    assert a == b
    assert a["images/shapes_00000.png"] != c["images/shapes_00000.png"]


def test_coco_file_is_valid_and_exact(tmp_path: Path) -> None:
    path = shapes.write_dataset(tmp_path, count=6, seed=3, size=128)
    coco = COCO(str(path))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == list(shapes.CLASSES)
    assert len(coco.getImgIds()) == 6
    assert coco.getAnnIds(), "six pictures hold at least one shape"
    for image_id in coco.getImgIds():
        info = coco.loadImgs(image_id)[0]
        index = int(Path(info["file_name"]).stem.split("_")[1])
        sample = shapes.generate(3, index, 128)
        bgr = cv2.imread(str(tmp_path / "images" / info["file_name"]))
        assert bgr is not None
        pixels = bgr[:, :, ::-1]
        assert (info["width"], info["height"]) == (128, 128)
        assert np.array_equal(pixels, sample.image), "the PNG holds exactly the generated pixels"
        anns = coco.loadAnns(coco.getAnnIds(imgIds=image_id))
        assert len(anns) == len(sample.shapes)
        for ann, shape, visible in zip(anns, sample.shapes, sample.visible, strict=True):
            assert isinstance(ann["segmentation"]["counts"], str)  # compressed RLE
            decoded = coco.annToMask(ann).astype(bool)
            assert np.array_equal(decoded, visible)
            assert ann["category_id"] == shape.category_id
            assert ann["area"] == int(visible.sum())
            assert ann["bbox"] == [int(v) for v in mask_util.toBbox(coco.annToRLE(ann))]
            assert ann["iscrowd"] == 0


def test_masks_are_the_visible_pixels_of_each_shape() -> None:
    for index in range(20):
        sample = shapes.generate(11, index, 128)
        if not sample.shapes:
            continue
        drawn = np.any([s.mask for s in sample.shapes], axis=0)
        labelled = np.sum(sample.visible, axis=0)
        # Every shape pixel belongs to exactly one annotation; background to none.
        assert np.array_equal(labelled >= 1, drawn)
        assert labelled.max() == 1
        for shape, visible in zip(sample.shapes, sample.visible, strict=True):
            colours = sample.image[visible].astype(int)
            # The pixels under the mask are the shape's colour (plus its shading noise).
            assert np.abs(np.median(colours, axis=0) - shape.color).max() <= 6


def test_occluded_shapes_keep_only_their_visible_part() -> None:
    occluded = 0
    for index in range(60):
        sample = shapes.generate(5, index, 128)
        for k, (shape, visible) in enumerate(zip(sample.shapes, sample.visible, strict=True)):
            later = (
                np.any([s.mask for s in sample.shapes[k + 1 :]], axis=0)
                if k + 1 < len(sample.shapes)
                else np.zeros_like(shape.mask)
            )
            assert np.array_equal(visible, shape.mask & ~later)
            # Mostly hidden shapes are left out of the picture altogether.
            assert visible.sum() >= shapes.MIN_VISIBLE * shape.mask.sum()
            if visible.sum() < shape.mask.sum():
                occluded += 1
    assert occluded >= 5, "the generator should produce real occlusions"


def test_classes_option_adds_stars(tmp_path: Path) -> None:
    assert (
        shapes.main(
            [
                str(tmp_path),
                "--count",
                "12",
                "--seed",
                "1",
                "--size",
                "96",
                "--classes",
                "circle,star",
            ]
        )
        == 0
    )
    data = json.loads((tmp_path / "annotations.json").read_text())
    assert [c["name"] for c in data["categories"]] == ["circle", "star"]
    assert {a["category_id"] for a in data["annotations"]} == {1, 2}
