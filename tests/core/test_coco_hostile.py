"""COCO files from other tools and from attackers: each gets a clear result or message, never
a crash, a traceback or gigabytes. pycocotools is the reference for what masks mean."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_util

from maskdesk.core.coco_read import (
    CLIPPED_POLYGON,
    ODD_POLYGON,
    parse_coco,
    read_coco,
    renumber_note,
)
from maskdesk.core.errors import CocoError


def _file(
    tmp_path: Path,
    annotations: list,
    *,
    width: int = 40,
    height: int = 30,
    categories: list | None = None,
) -> Path:
    data = {
        "images": [{"id": 1, "file_name": "a.png", "width": width, "height": height}],
        "categories": categories or [{"id": 1, "name": "cat"}],
        "annotations": [
            {"id": i + 1, "image_id": 1, "category_id": 1, **a} for i, a in enumerate(annotations)
        ],
    }
    path = tmp_path / "in.json"
    path.write_text(json.dumps(data))
    return path


def _reference(polygon: list[float], width: int, height: int) -> np.ndarray:
    rle = mask_util.frPyObjects([polygon], height, width)
    return mask_util.decode(mask_util.merge(rle)).astype(bool)


def _inside(polygon: list[float], width: int, height: int) -> np.ndarray:
    """Pixel centres inside a convex polygon (counter-clockwise or not), in float64."""
    xy = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
    yy, xx = np.mgrid[:height, :width] + 0.5
    signs = []
    for (ax, ay), (bx, by) in zip(xy, np.roll(xy, -1, axis=0), strict=True):
        signs.append((bx - ax) * (yy - ay) - (by - ay) * (xx - ax) >= 0)
    stacked = np.stack(signs)
    return stacked.all(axis=0) | (~stacked).all(axis=0)


@pytest.mark.parametrize("far", [5e8, 1e7, -3e9])
def test_far_away_polygon_vertices_cost_nothing_and_keep_the_shape(
    tmp_path: Path, far: float
) -> None:
    # A triangle with one vertex far outside: inside the image it is a wedge.
    polygon = [5.0, 5.0, 35.0, 12.0, far, 20.0]
    tracemalloc.start()
    read = read_coco(_file(tmp_path, [{"segmentation": [polygon]}]))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 20_000_000  # pycocotools alone needs 1.6 GB for 1e7 and crashes on 5e8
    assert read.notes == {CLIPPED_POLYGON: 1}
    (inst,) = read.images[0].instances
    truth = _inside(polygon, 40, 30)
    got = inst.mask.to_full(40, 30)
    assert truth.sum() > 100
    # pycocotools rounds on a 5x grid, so edge pixels may differ; the shape may not
    assert (got ^ truth).sum() <= 0.1 * truth.sum()


def test_polygons_that_stray_a_little_outside_keep_exactly_pycocotools_pixels(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(5)
    anns, polygons = [], []
    for _ in range(150):
        n = int(rng.integers(3, 8))
        pts = np.column_stack([rng.uniform(-60, 100, n), rng.uniform(-50, 80, n)])
        polygon = pts.round(2).ravel().tolist()
        polygons.append(polygon)
        anns.append({"segmentation": [polygon]})
    read = read_coco(_file(tmp_path, anns))
    assert read.notes == {}  # within the frame nothing is clipped
    by_mask = iter(read.images[0].instances)
    compared = 0
    for polygon in polygons:
        expected = _reference(polygon, 40, 30)
        if not expected.any():
            continue  # an empty mask is skipped and counted
        assert np.array_equal(next(by_mask).mask.to_full(40, 30), expected)
        compared += 1
    assert compared > 100
    assert read.skipped.get("empty mask", 0) == 150 - compared


def test_odd_length_polygons_are_drawn_as_pycocotools_draws_them_and_reported(
    tmp_path: Path,
) -> None:
    polygon = [2.0, 2.0, 20.0, 3.0, 18.0, 25.0, 4.0, 20.0, 7.0]  # 9 values
    read = read_coco(_file(tmp_path, [{"segmentation": [polygon]}]))
    (inst,) = read.images[0].instances
    assert np.array_equal(inst.mask.to_full(40, 30), _reference(polygon, 40, 30))
    assert read.notes == {ODD_POLYGON: 1}


def test_deeply_nested_json_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000)
    with pytest.raises(CocoError, match="deep.json"):
        parse_coco(path)


def test_an_unused_background_category_is_skipped_with_a_note(tmp_path: Path) -> None:
    cats = [{"id": 0, "name": "_background_"}, {"id": 1, "name": "cat"}]
    square = [2, 2, 10, 2, 10, 10, 2, 10]
    read = read_coco(_file(tmp_path, [{"segmentation": [square]}], categories=cats))
    assert [c.name for c in read.categories] == ["cat"]
    assert len(read.images[0].instances) == 1
    (note,) = read.notes
    assert "_background_" in note and "skipped" in note
    # When an annotation does use it, a person drew that mask: the class comes in, renumbered.
    data = json.loads((tmp_path / "in.json").read_text())
    data["annotations"].append({"id": 9, "image_id": 1, "category_id": 0, "segmentation": [square]})
    (tmp_path / "in.json").write_text(json.dumps(data))
    read = read_coco(tmp_path / "in.json")
    assert [(c.id, c.name) for c in read.categories] == [(1, "cat"), (2, "_background_")]
    assert [i.category_id for i in read.images[0].instances] == [1, 2]
    assert list(read.notes) == [renumber_note(0, "_background_", 2)]
    # A name that cannot be a class at all: its annotations are skipped and counted.
    data["categories"][0]["name"] = "N/A"
    (tmp_path / "in.json").write_text(json.dumps(data))
    read = read_coco(tmp_path / "in.json")
    assert len(read.images[0].instances) == 1
    assert read.skipped == {"category that is not a valid class": 1}


def test_a_claimed_size_over_the_pixel_limit_is_refused_before_decoding(tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        [{"segmentation": {"size": [40000, 50000], "counts": [0, 2_000_000_000]}}],
        width=50000,
        height=40000,
    )
    with pytest.raises(CocoError, match="50000 x 40000") as info:
        read_coco(path, max_pixels=180_000_000)
    assert info.value.setting == "max_pixels"


@pytest.mark.parametrize(
    "segmentation",
    [
        {"size": [30, 40], "counts": "\u00e9\u00e9"},
        {"size": [30, 40], "counts": [1, 2, 3]},
        {"size": ["30", 40], "counts": [1200]},
        [[1, 2, "x", 4, 5, 6]],
        [[1, 2, 3, True, 5, 6]],
        "polygon",
    ],
)
def test_malformed_segmentations_name_the_annotation(tmp_path: Path, segmentation: object) -> None:
    with pytest.raises(CocoError, match="annotation 1"):
        read_coco(_file(tmp_path, [{"segmentation": segmentation}]))
