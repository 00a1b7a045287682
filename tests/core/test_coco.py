"""COCO export and import: file contents, exact round trips, validation by two COCO evaluators."""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_util
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

import maskdesk
from maskdesk.core.categories import Category
from maskdesk.core.coco import CocoImage, build_coco, export_coco, safe_relative, write_coco
from maskdesk.core.coco_read import read_coco
from maskdesk.core.errors import CocoError
from maskdesk.core.instances import Instance, Origin, Review
from maskdesk.core.masks import CropMask

CATEGORIES = [Category(1, "cat"), Category(2, "dog", "animal"), Category(3, "unused")]


def ellipse(x: int, y: int, w: int, h: int) -> CropMask:
    bits = np.zeros((h, w), dtype=np.uint8)
    cv2.ellipse(bits, (w // 2, h // 2), (w // 2, h // 2), 0, 0, 360, 1, cv2.FILLED)
    return CropMask(x, y, bits.astype(bool))


def ring(x: int, y: int, size: int) -> CropMask:
    bits = np.ones((size, size), dtype=bool)
    bits[size // 3 : 2 * size // 3, size // 3 : 2 * size // 3] = False
    return CropMask(x, y, bits)


def two_parts(x: int, y: int) -> CropMask:
    bits = np.zeros((10, 30), dtype=bool)
    bits[1:9, 1:8] = True
    bits[3:6, 20:29] = True
    return CropMask(x, y, bits)


def sample_images() -> list[CocoImage]:
    """Two images with every kind of instance an export must handle, and one empty image."""
    first = CocoImage(
        "photos/été/chat 1.jpg",
        width=120,
        height=90,
        instances=[
            # The model's box is looser than the mask: the export must use the mask's.
            Instance(1, ellipse(10, 12, 30, 20), score=0.91, box=(5.0, 5.0, 50.0, 40.0)),
            Instance(2, ring(50, 10, 24), score=0.66),
            Instance(1, two_parts(5, 60), origin=Origin.HUMAN, review=Review.ACCEPTED),
            # Crosses the right and bottom borders: exported clipped.
            Instance(2, ellipse(100, 70, 40, 40), score=0.8),
            Instance(1, ellipse(60, 50, 12, 12), score=0.9, review=Review.REJECTED),
            Instance(1, ellipse(70, 50, 12, 12), score=0.9, visible=False),
            Instance(1, ellipse(80, 40, 12, 12), score=0.2),
            Instance(2, ellipse(40, 40, 10, 8), score=0.1, review=Review.ACCEPTED),
            Instance(1, CropMask(3, 3, np.zeros((4, 4), dtype=bool)), score=0.99),
        ],
    )
    second = CocoImage("photos/b.png", 64, 48, [Instance(2, ellipse(0, 0, 64, 48), score=0.5)])
    return [first, CocoImage("empty.jpg", 32, 32), second]


def decoded(segmentation: object, height: int, width: int) -> np.ndarray:
    if isinstance(segmentation, list):
        rle = mask_util.merge(mask_util.frPyObjects(segmentation, height, width))
    else:
        rle = dict(segmentation)  # type: ignore[call-overload]
        rle["counts"] = rle["counts"].encode("ascii")
    return mask_util.decode(rle).astype(bool)


def without_date(data: dict) -> dict:
    data = json.loads(json.dumps(data))
    del data["info"]["date_created"]
    return data


def test_export_follows_coco_rules(tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    data = export_coco(path, sample_images(), CATEGORIES, min_score=0.3)
    assert json.loads(path.read_text("utf-8")) == data

    assert data["info"]["version"] == maskdesk.__version__
    assert data["info"]["date_created"].startswith("20")
    assert data["licenses"] == []
    assert [c for c in data["categories"]] == [
        {"id": 1, "name": "cat", "supercategory": ""},
        {"id": 2, "name": "dog", "supercategory": "animal"},
        {"id": 3, "name": "unused", "supercategory": ""},
    ]
    assert data["images"] == [
        {"id": 1, "file_name": "photos/été/chat 1.jpg", "width": 120, "height": 90},
        {"id": 2, "file_name": "empty.jpg", "width": 32, "height": 32},
        {"id": 3, "file_name": "photos/b.png", "width": 64, "height": 48},
    ]
    anns = data["annotations"]
    # Kept: ellipse, ring, human two-part, clipped ellipse, accepted low-score one, and the
    # second image's ellipse. Not: rejected, hidden, below 0.3, empty.
    assert [a["id"] for a in anns] == [1, 2, 3, 4, 5, 6]
    assert [a["image_id"] for a in anns] == [1, 1, 1, 1, 1, 3]
    assert [a["category_id"] for a in anns] == [1, 2, 1, 2, 2, 2]
    assert [a.get("score") for a in anns] == [0.91, 0.66, None, 0.8, 0.1, 0.5]
    assert all(a["iscrowd"] == 0 for a in anns)

    sources = [inst for inst in sample_images()[0].instances[:4]] + [
        sample_images()[0].instances[7],
        sample_images()[2].instances[0],
    ]
    for ann, inst in zip(anns, sources, strict=True):
        image = data["images"][ann["image_id"] - 1]
        h, w = image["height"], image["width"]
        seg = ann["segmentation"]
        assert seg["size"] == [h, w] and isinstance(seg["counts"], str)
        full = decoded(seg, h, w)
        assert np.array_equal(full, inst.mask.to_full(w, h))
        ys, xs = np.nonzero(full)
        assert ann["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
        assert ann["area"] == int(full.sum())
    assert anns[0]["bbox"] == [10, 12, 30, 20]  # the mask's box, not the model's (5, 5, 50, 40)
    assert anns[3]["bbox"][0] + anns[3]["bbox"][2] == 120  # clipped at the right border


def test_export_without_threshold_keeps_low_scores_but_never_rejected_or_hidden() -> None:
    data = build_coco(sample_images(), CATEGORIES)
    assert sorted(a["score"] for a in data["annotations"] if "score" in a) == [
        0.1,
        0.2,
        0.5,
        0.66,
        0.8,
        0.91,
    ]


def test_polygon_export_is_exact_and_keeps_rle_for_holes() -> None:
    data = build_coco(sample_images(), CATEGORIES, polygons=True, min_score=0.3)
    anns = data["annotations"]
    kinds = [type(a["segmentation"]).__name__ for a in anns]
    assert kinds == ["list", "dict", "list", "list", "list", "list"]  # the ring keeps RLE
    assert len(anns[2]["segmentation"]) == 2  # two parts, two polygons
    for ann, inst in zip(anns, [i for i in sample_images()[0].instances[:4]], strict=False):
        full = decoded(ann["segmentation"], 90, 120)
        assert np.array_equal(full, inst.mask.to_full(120, 90))
    corners = sorted(
        sorted(zip(poly[::2], poly[1::2], strict=True)) for poly in anns[2]["segmentation"]
    )
    # Both blocks of the two-part mask at (5, 60) are outlined along their pixel corners.
    assert corners == [
        [(6, 61), (6, 69), (13, 61), (13, 69)],
        [(25, 63), (25, 66), (34, 63), (34, 66)],
    ]


def test_polygons_rasterise_back_to_the_same_pixels_for_random_shapes(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    instances = []
    for _ in range(150):
        h, w = (int(v) for v in rng.integers(1, 16, size=2))
        bits = rng.random((h, w)) < rng.uniform(0.3, 0.9)
        instances.append(Instance(1, CropMask(int(rng.integers(0, 30)), 3, bits), score=0.5))
    images = [CocoImage(f"{i}.png", 50, 20, [inst]) for i, inst in enumerate(instances)]
    data = export_coco(tmp_path / "p.json", images, CATEGORIES, polygons=True)
    read = read_coco(tmp_path / "p.json")
    polygons = sum(isinstance(a["segmentation"], list) for a in data["annotations"])
    assert 30 < polygons < len(data["annotations"])  # both forms occur on noisy shapes
    exported = [inst for inst in instances if not inst.mask.is_empty()]
    back = [inst for image in read.images for inst in image.instances]
    assert len(back) == len(exported)
    for a, b in zip(exported, back, strict=True):
        assert a.mask.clipped(50, 20) == b.mask


@pytest.mark.parametrize("polygons", [False, True])
def test_export_import_export_is_identical(tmp_path: Path, polygons: bool) -> None:
    first = export_coco(tmp_path / "a.json", sample_images(), CATEGORIES, polygons=polygons)
    read = read_coco(tmp_path / "a.json")
    assert read.skipped == {}
    second = export_coco(tmp_path / "b.json", read.images, read.categories, polygons=polygons)
    assert without_date(first) == without_date(second)
    a = (tmp_path / "a.json").read_text("utf-8")
    b = (tmp_path / "b.json").read_text("utf-8")
    assert a.replace(first["info"]["date_created"], "") == b.replace(
        second["info"]["date_created"], ""
    )


def test_imported_instances_carry_origin_review_and_box(tmp_path: Path) -> None:
    export_coco(tmp_path / "a.json", sample_images(), CATEGORIES, min_score=0.3)
    read = read_coco(tmp_path / "a.json")
    assert [image.file_name for image in read.images] == [
        "photos/été/chat 1.jpg",
        "empty.jpg",
        "photos/b.png",
    ]
    assert [(image.width, image.height) for image in read.images] == [(120, 90), (32, 32), (64, 48)]
    assert read.categories == CATEGORIES
    first = read.images[0].instances
    assert [i.origin for i in first] == [Origin.MODEL, Origin.MODEL, Origin.HUMAN] + [
        Origin.MODEL
    ] * 2
    # The last one was accepted by a person at score 0.1: the file says so, import restores it.
    assert [i.review for i in first] == [
        Review.PENDING,
        Review.PENDING,
        Review.ACCEPTED,
        Review.PENDING,
        Review.ACCEPTED,
    ]
    assert first[0].score == 0.91 and first[2].score is None
    assert first[0].box == (10.0, 12.0, 40.0, 32.0)  # from the file's bbox
    assert first[0].mask == sample_images()[0].instances[0].mask
    assert read.images[1].instances == []


@pytest.mark.parametrize("polygons", [False, True])
def test_export_scores_known_ap_in_two_coco_evaluators(tmp_path: Path, polygons: bool) -> None:
    """Ground truth and predictions with chosen IoUs, exported by maskdesk and scored by
    pycocotools and faster-coco-eval: both must give the AP worked out by hand below."""

    def rect(x: int, y: int, w: int, h: int) -> CropMask:
        return CropMask(x, y, np.ones((h, w), dtype=bool))

    def truth(category_id: int, mask: CropMask, review: Review = Review.ACCEPTED) -> Instance:
        return Instance(category_id, mask, origin=Origin.HUMAN, review=review)

    # Strips 25 x 4 = 100 pixels, so that a prediction inside one, w x 4, has IoU w / 25.
    # IoUs stay clear of the thresholds 0.50:0.05:0.95, where float rounding would decide.
    truths = [
        [truth(1, rect(5, 5, 20, 10)), truth(1, rect(50, 40, 25, 4))],  # cat A, cat C
        [truth(1, rect(10, 10, 25, 4)), truth(2, rect(10, 40, 25, 4))],  # cat B, dog D
        [truth(2, rect(30, 30, 15, 12)), truth(1, rect(60, 5, 9, 9), review=Review.REJECTED)],
        [],
    ]
    guesses = [
        [
            Instance(1, rect(5, 5, 20, 10), score=0.9),  # cat A, IoU 1
            Instance(1, rect(50, 40, 10, 4), score=0.8),  # inside cat C, IoU 0.4: false positive
            Instance(1, rect(80, 60, 10, 10), score=0.99, review=Review.REJECTED),  # not exported
            Instance(1, rect(80, 5, 10, 10), score=0.98, visible=False),  # not exported
        ],
        [
            Instance(1, rect(10, 10, 21, 4), score=0.7),  # cat B, IoU 0.84
            Instance(2, rect(12, 40, 16, 4), score=0.95),  # dog D, IoU 0.64
        ],
        [Instance(2, rect(30, 30, 15, 12), score=0.6)],  # dog E, IoU 1
        [],
    ]
    names = ["a.jpg", "sub/b.jpg", "c.png", "empty.jpg"]
    gt_path = tmp_path / "gt.json"
    gt = export_coco(
        gt_path,
        [CocoImage(n, 100, 80, list(i)) for n, i in zip(names, truths, strict=True)],
        CATEGORIES,
        polygons=polygons,
    )
    predicted = build_coco(
        [CocoImage(n, 100, 80, list(i)) for n, i in zip(names, guesses, strict=True)],
        CATEGORIES,
    )
    assert [i["file_name"] for i in gt["images"]] == [i["file_name"] for i in predicted["images"]]
    assert len(gt["annotations"]) == 5 and len(predicted["annotations"]) == 5

    # Worked by hand (101 recall points, 10 IoU thresholds t, categories averaged):
    # cat, 3 truths, detections by score: A (TP), the 0.4 overlap (FP), B (TP at t <= 0.84);
    #   t <= 0.80 (7 thresholds): precision 1 up to recall 1/3 (34 points), 2/3 up to 2/3
    #   (33 points): AP = (34 + 22) / 101; t >= 0.85 (3): only A, AP = 34 / 101.
    # dog, 2 truths: D (0.95, TP at t <= 0.64), then E (0.6, TP):
    #   t <= 0.60 (3): AP = 1; t >= 0.65 (7): precision 1/2 up to recall 1/2 (51 points),
    #   AP = 25.5 / 101.
    cat = (7 * 56 + 3 * 34) / 1010
    dog = (3 * 101 + 7 * 25.5) / 1010
    expected = {
        "AP": (cat + dog) / 2,  # 0.48292
        "AP50": (56 / 101 + 1) / 2,  # 0.77723
        "AP75": (56 / 101 + 25.5 / 101) / 2,  # 0.40347
        "AP small": (cat + dog) / 2,  # every object is under 32 x 32 pixels
        "AP medium": -1.0,
        "AR100": ((7 * 2 / 3 + 3 * 1 / 3) / 10 + (3 * 1 + 7 * 0.5) / 10) / 2,  # 0.60833
    }
    assert expected["AP"] == pytest.approx(0.482921, abs=1e-6)
    where = {"AP": 0, "AP50": 1, "AP75": 2, "AP small": 3, "AP medium": 4, "AR100": 8}

    from faster_coco_eval import COCO as FastCOCO
    from faster_coco_eval import COCOeval_faster

    scored: dict[str, dict[str, float]] = {}
    with contextlib.redirect_stdout(io.StringIO()):
        for evaluator, reader, evaluation in [
            ("pycocotools", COCO, COCOeval),
            ("faster-coco-eval", FastCOCO, COCOeval_faster),
        ]:
            truth_set = reader(str(gt_path))
            # Results are the prediction file's annotations; loadRes rewrites them, so copy.
            results = truth_set.loadRes(json.loads(json.dumps(predicted["annotations"])))
            for iou_type in ("segm", "bbox"):  # rectangles: box IoUs equal mask IoUs
                ev = evaluation(truth_set, results, iou_type)
                ev.evaluate()
                ev.accumulate()
                ev.summarize()
                stats = {name: float(ev.stats[i]) for name, i in where.items()}
                scored[f"{evaluator} {iou_type}"] = stats
    for name, stats in scored.items():
        assert stats == pytest.approx(expected, abs=1e-9), name


def test_nan_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    data = build_coco(sample_images(), CATEGORIES)
    data["annotations"][0]["score"] = math.nan
    with pytest.raises(CocoError, match="non-finite"):
        write_coco(data, tmp_path / "bad.json")
    assert list(tmp_path.iterdir()) == []


def test_export_refuses_instances_of_unlisted_categories() -> None:
    images = [CocoImage("a.jpg", 20, 20, [Instance(9, ellipse(2, 2, 8, 8), score=0.9)])]
    with pytest.raises(CocoError, match="category id 9"):
        build_coco(images, CATEGORIES)


def write_json(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data), "utf-8")
    return path


def test_import_reads_uncompressed_rle_and_polygons_and_counts_skips(tmp_path: Path) -> None:
    full = np.zeros((10, 12), dtype=bool)
    full[2:5, 3:7] = True
    counts = CropMask.from_full(full).rle_counts(12, 10)
    data = {
        "images": [{"id": 7, "file_name": "x\\y.png", "width": 12, "height": 10}],
        "categories": [{"id": 1, "name": "cat"}],
        "annotations": [
            {
                "id": 1,
                "image_id": 7,
                "category_id": 1,
                "iscrowd": 0,
                "segmentation": {"size": [10, 12], "counts": counts},
            },
            {
                "id": 2,
                "image_id": 7,
                "category_id": 1,
                "score": 0.4,
                "segmentation": [[3, 2, 7, 2, 7, 5, 3, 5], [1, 1, 2, 2]],
            },
            {
                "id": 3,
                "image_id": 7,
                "category_id": 1,
                "iscrowd": 1,
                "segmentation": {"size": [10, 12], "counts": counts},
            },
            {"id": 4, "image_id": 7, "category_id": 1, "segmentation": [[1, 1, 1, 1, 1, 1]]},
            {"id": 5, "image_id": 7, "category_id": 5, "segmentation": [[0, 0, 4, 0, 4, 4]]},
            {"id": 6, "image_id": 7, "category_id": 1, "bbox": [0, 0, 3, 3]},
            # Zero-length runs inside are legal in uncompressed RLE.
            {
                "id": 8,
                "image_id": 7,
                "category_id": 1,
                "segmentation": {"size": [10, 12], "counts": [21, 2, 0, 1, 96]},
            },
        ],
    }
    read = read_coco(write_json(tmp_path / "in.json", data))
    assert read.skipped == {
        "empty mask": 1,
        "unknown category": 1,
        "box only, no mask": 1,
    }
    image = read.images[0]
    assert image.file_name == "x/y.png"
    rle_inst, poly_inst, crowd_inst, runs_inst = image.instances
    assert crowd_inst.crowd and not rle_inst.crowd  # crowd regions are kept as such
    assert crowd_inst.mask == rle_inst.mask
    assert np.array_equal(rle_inst.mask.to_full(12, 10), full)
    assert np.array_equal(poly_inst.mask.to_full(12, 10), full)  # the 2-point polygon is dropped
    assert (poly_inst.origin, poly_inst.review, poly_inst.score) == (
        Origin.MODEL,
        Review.PENDING,
        0.4,
    )
    assert (rle_inst.origin, rle_inst.review) == (Origin.HUMAN, Review.ACCEPTED)
    assert rle_inst.box == (3.0, 2.0, 7.0, 5.0)  # no bbox in the file: the mask's
    expected = np.zeros(120, dtype=bool)
    expected[21:24] = True
    assert np.array_equal(runs_inst.mask.to_full(12, 10), expected.reshape(12, 10).T)


def test_import_reads_strings_written_by_pycocotools_encode(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    anns = []
    masks = []
    for i in range(60):
        full = np.zeros((37, 51), dtype=np.uint8)
        x, y = int(rng.integers(0, 40)), int(rng.integers(0, 30))
        h, w = int(rng.integers(1, 30)), int(rng.integers(1, 40))
        if i % 2:  # noisy blobs: many runs, large and negative deltas in the string
            full[y : y + h, x : x + w] = rng.random(full[y : y + h, x : x + w].shape) < 0.5
        else:
            full[y : y + h, x : x + w] = 1
        rle = mask_util.encode(np.asfortranarray(full))
        segmentation = {"size": [37, 51], "counts": rle["counts"].decode()}
        anns.append({"id": i + 1, "image_id": 1, "category_id": 1, "segmentation": segmentation})
        masks.append(full.astype(bool))
    data = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 51, "height": 37}],
        "annotations": anns,
        "categories": [{"id": 1, "name": "a"}],
    }
    read = read_coco(write_json(tmp_path / "in.json", data))
    for inst, full in zip(read.images[0].instances, masks, strict=True):
        assert np.array_equal(inst.mask.to_full(51, 37), full)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist"),
        ("{not json", "not valid JSON"),
        ("[]", "not a COCO dataset"),
        ('{"annotations": []}', "no 'images'"),
        ('{"images": []}', "no 'annotations'"),
        (
            '{"images": [], "annotations": [{"id": 41, "image_id": 3, "segmentation": []}]}',
            "annotation 41 refers to image id 3",
        ),
        (
            '{"images": [{"id": 1, "file_name": "a.jpg", "width": 4, "height": 3}],'
            ' "categories": [{"id": 1, "name": "a"}], "annotations": [{"id": 12, "image_id": 1,'
            ' "category_id": 1, "segmentation": {"size": [4, 3], "counts": [12]}}]}',
            r"annotation 12: its RLE size \[4, 3\] is not the image's \[height, width\] \[3, 4\]",
        ),
        (
            '{"images": [{"id": 1, "file_name": "a.jpg", "width": 4, "height": 3}],'
            ' "categories": [{"id": 1, "name": "a"}], "annotations": [{"id": 13, "image_id": 1,'
            ' "category_id": 1, "segmentation": {"size": [3, 4], "counts": "0zz"}}]}',
            "annotation 13: the RLE",
        ),
        (
            '{"images": [{"id": 1, "file_name": "a.jpg", "width": 4, "height": 3}],'
            ' "categories": [{"id": 1, "name": "a"}], "annotations": [{"id": 14, "image_id": 1,'
            ' "category_id": 1, "segmentation": {"size": [3, 4], "counts": [5, 2]}}]}',
            "annotation 14: the RLE counts do not add up to 3 x 4",
        ),
        (
            '{"images": [{"id": 1, "file_name": "a.jpg", "width": 4, "height": 3}],'
            ' "categories": [{"id": 1, "name": "a"}], "annotations": [{"id": 15, "image_id": 1,'
            ' "category_id": 1, "score": 7, "segmentation": [[0, 0, 3, 0, 3, 2]]}]}',
            "annotation 15: its score 7",
        ),
    ],
)
def test_bad_files_raise_coco_error_naming_file_and_problem(
    tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "bad file.json"
    if content is not None:
        path.write_text(content, "utf-8")
    with pytest.raises(CocoError, match=message) as info:
        read_coco(path)
    assert "bad file.json" in str(info.value)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a/b.jpg", "a/b.jpg"),
        ("a\\b.jpg", "a/b.jpg"),
        ("./a//b.jpg", "a/b.jpg"),
        ("a/../b.jpg", "b.jpg"),
        ("été/猫.png", "été/猫.png"),
    ],
)
def test_safe_relative_normalises(name: str, expected: str) -> None:
    assert safe_relative(name) == expected


@pytest.mark.parametrize(
    "name",
    ["../a.jpg", "a/../../b.jpg", "/etc/x.jpg", "C:/x.jpg", "c:x.jpg", "\\\\srv\\x", "", "."],
)
def test_safe_relative_refuses_names_outside_the_root(name: str) -> None:
    with pytest.raises(CocoError):
        safe_relative(name)
