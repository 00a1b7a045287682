"""The predictor on a real (biased, untrained) torchvision Mask R-CNN: compact masks equal to
torchvision's full-frame paste, EXIF handling, the score floor, file loops and devices."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.models.detection.roi_heads import paste_masks_in_image

from maskdesk.cli_messages import describe
from maskdesk.cli_predict import PREDICT_FLAGS
from maskdesk.core.errors import ImageError, ModelError
from maskdesk.core.images import load_rgb
from maskdesk.core.instances import Instance, Origin, Review
from maskdesk.inference.predictor import Predictor, mask_crops, pick_device, predict_files
from tests.biased_model import PERSON, build_biased_model, make_picture

WIDTH, HEIGHT = 320, 240


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return Predictor(build_biased_model(), device="cpu")


@pytest.fixture(scope="module")
def picture() -> np.ndarray:
    return make_picture(WIDTH, HEIGHT)


@pytest.fixture(scope="module")
def instances(predictor: Predictor, picture: np.ndarray) -> list[Instance]:
    return predictor.predict(picture)


def _full(masks: torch.Tensor, boxes: torch.Tensor, height: int, width: int) -> np.ndarray:
    return (paste_masks_in_image(masks, boxes, (height, width))[:, 0] > 0.5).numpy()


def test_many_person_detections_down_to_the_score_floor(instances: list[Instance]) -> None:
    assert len(instances) == 100  # torchvision's detections_per_img
    scores = [i.score for i in instances if i.score is not None]
    assert len(scores) == 100 and all(0.05 <= s <= 1.0 for s in scores)
    assert max(scores) - min(scores) > 0.1  # real spread, nothing filtered at 0.5
    assert min(scores) < 0.5
    assert {i.category_id for i in instances} == {PERSON}
    assert all(i.origin is Origin.MODEL and i.review is Review.PENDING for i in instances)
    # Masks are partial: neither empty nor filling their boxes.
    for inst in instances:
        assert inst.box is not None
        x0, y0, x1, y1 = inst.box
        assert 0.05 < inst.mask.area / ((x1 - x0) * (y1 - y0)) < 0.95


def test_crops_equal_torchvision_full_frame_paste(
    predictor: Predictor, picture: np.ndarray, instances: list[Instance]
) -> None:
    raw = predictor.raw(picture)
    assert raw["masks"].shape[1:] == (1, 28, 28)  # the model no longer pastes full frames
    expected = _full(raw["masks"], raw["boxes"], HEIGHT, WIDTH)
    boxes = raw["boxes"]
    at_border = (boxes[:, 0] <= 0) | (boxes[:, 1] <= 0) | (boxes[:, 2] >= WIDTH)
    at_border |= boxes[:, 3] >= HEIGHT
    assert int(at_border.sum()) >= 5  # the border cases are exercised
    assert len(instances) == len(expected)
    for inst, full in zip(instances, expected, strict=True):
        assert np.array_equal(inst.mask.to_full(WIDTH, HEIGHT), full)
    assert [i.box for i in instances] == [tuple(b) for b in boxes.tolist()]


def test_same_output_as_the_unpatched_torchvision_model(
    picture: np.ndarray, instances: list[Instance]
) -> None:
    plain = build_biased_model().model  # same seed, torchvision's own post-processing
    tensor = torch.from_numpy(picture).permute(2, 0, 1).float() / 255
    with torch.inference_mode():
        out = plain([tensor])[0]
    assert out["masks"].shape == (100, 1, HEIGHT, WIDTH)
    full = (out["masks"][:, 0] > 0.5).numpy()
    assert [i.box for i in instances] == [tuple(b) for b in out["boxes"].tolist()]
    assert [i.score for i in instances] == out["scores"].tolist()
    for inst, expected in zip(instances, full, strict=True):
        assert np.array_equal(inst.mask.to_full(WIDTH, HEIGHT), expected)


def test_the_installed_model_leaves_other_callers_tensors_alone(
    predictor: Predictor, picture: np.ndarray
) -> None:
    # The in-place normalization is only for tensors the predictor hands over.
    tensor = torch.from_numpy(picture).permute(2, 0, 1).float() / 255
    before = tensor.clone()
    with torch.inference_mode():
        out = predictor.model([tensor])[0]
    assert torch.equal(tensor, before)
    assert out["masks"].shape == (100, 1, 28, 28)


def test_crops_match_paste_for_boxes_beyond_the_border_and_tiny_boxes() -> None:
    generator = torch.Generator().manual_seed(3)
    height, width = 37, 53
    boxes = torch.tensor(
        [
            [-8.6, -5.2, 20.3, 14.9],  # beyond top-left
            [40.2, 25.7, 60.9, 44.1],  # beyond bottom-right
            [-3.0, -3.0, 56.0, 40.0],  # larger than the image
            [10.4, 10.6, 10.9, 11.2],  # under a pixel
            [0.0, 0.0, 53.0, 37.0],  # exactly the image
            [52.6, 36.5, 53.0, 37.0],  # a sliver at the corner
            [17.25, 3.5, 31.75, 29.5],  # inside, fractional
            # Small boxes with certain masks: their edge rows and columns are set, so an
            # off-by-one in the crop's extent shows.
            [3.2, 4.7, 9.9, 12.1],
            [45.5, 30.2, 52.4, 36.8],
            [0.3, 20.0, 4.1, 26.0],
        ]
    )
    logits = torch.randn((len(boxes), 1, 28, 28), generator=generator) * 3
    masks = torch.sigmoid(logits)
    masks[-3:] = 1.0
    expected = _full(masks, boxes, height, width)
    crops = mask_crops(masks, boxes, height, width)
    assert any(e.any() for e in expected) and not all(e.all() for e in expected)
    for crop, full in zip(crops, expected, strict=True):
        assert np.array_equal(crop.to_full(width, height), full)
        assert crop.x + crop.width <= width and crop.y + crop.height <= height


def _save_with_orientation(upright: np.ndarray, path: Path, orientation: int) -> None:
    # Store the pixels as a camera would (rotated) and let EXIF say how to show them.
    stored = Image.fromarray(upright)
    if orientation == 6:  # display = stored rotated 90 degrees clockwise
        stored = stored.transpose(Image.Transpose.ROTATE_90)
    elif orientation == 3:
        stored = stored.transpose(Image.Transpose.ROTATE_180)
    exif = Image.Exif()
    exif[0x0112] = orientation
    stored.save(path, exif=exif)


@pytest.mark.parametrize("orientation", [6, 3])
def test_exif_rotated_file_gives_the_same_instances_as_upright_pixels(
    tmp_path: Path,
    predictor: Predictor,
    picture: np.ndarray,
    instances: list[Instance],
    orientation: int,
) -> None:
    upright_file = tmp_path / "upright.png"
    Image.fromarray(picture).save(upright_file)
    rotated_file = tmp_path / f"exif-{orientation}.png"
    _save_with_orientation(picture, rotated_file, orientation)
    with Image.open(rotated_file) as stored:
        stored_pixels = np.asarray(stored.convert("RGB"))  # convert() ignores EXIF
    assert not np.array_equal(stored_pixels, picture)  # the file really is stored rotated
    if orientation == 6:
        assert stored_pixels.shape == (WIDTH, HEIGHT, 3)

    upright_pixels = load_rgb(upright_file)
    rotated_pixels = load_rgb(rotated_file)
    assert np.array_equal(upright_pixels, picture)  # so `instances` are the upright file's
    from_rotated = predictor.predict(rotated_pixels)
    assert len(from_rotated) == len(instances) == 100
    assert from_rotated == instances  # category, score, box and mask, pixel for pixel


def test_predict_files_reports_a_broken_file_and_goes_on(
    tmp_path: Path, predictor: Predictor, picture: np.ndarray, instances: list[Instance]
) -> None:
    good = tmp_path / "good.png"
    Image.fromarray(picture).save(good)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    results = list(predict_files(predictor, [broken, good]))
    assert [r.path for r in results] == [broken, good]
    failed, worked = results
    assert failed.instances is None and isinstance(failed.error, ImageError)
    assert "broken.jpg" in str(failed.error)
    assert worked.error is None and worked.instances == instances and worked.seconds > 0
    assert worked.size == (picture.shape[1], picture.shape[0])
    assert worked.pixels is not None and np.array_equal(worked.pixels, picture)


def test_predict_files_decodes_the_next_image_while_predicting(
    predictor: Predictor, picture: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = [Path("a.png"), Path("b.png"), Path("c.png")]
    decoded = {p: threading.Event() for p in paths}
    decode_threads: set[int] = set()

    def decode(path: Path) -> np.ndarray:
        decode_threads.add(threading.get_ident())
        decoded[path].set()
        return picture[:64, :80].copy()

    seen_ahead: list[bool] = []

    def predict(rgb: np.ndarray) -> list[Instance]:
        # While image i is predicted, image i + 1 gets decoded without waiting for us.
        index = len(seen_ahead)
        if index + 1 < len(paths):
            seen_ahead.append(decoded[paths[index + 1]].wait(timeout=30))
        else:
            seen_ahead.append(True)
        return []

    monkeypatch.setattr(predictor, "predict", predict)
    results = list(predict_files(predictor, paths, decode=decode))
    assert [r.path for r in results] == paths
    assert seen_ahead == [True, True, True]
    assert threading.get_ident() not in decode_threads


def test_predict_files_stops_when_cancelled(
    predictor: Predictor, picture: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(predictor, "predict", lambda rgb: [])
    paths = [Path(f"{i}.png") for i in range(5)]
    done: list[Path] = []

    def cancel() -> bool:
        return len(done) >= 2

    for result in predict_files(predictor, paths, decode=lambda p: picture, cancel=cancel):
        done.append(result.path)
    assert done == paths[:2]


def test_cuda_requested_without_cuda_is_a_model_error() -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ModelError, match="no usable CUDA GPU") as info:
        pick_device("cuda")
    assert "--" not in str(info.value)  # inference names no flag; the CLI adds it
    assert describe(info.value, PREDICT_FLAGS).endswith("(--device auto).")
    with pytest.raises(ModelError):
        Predictor(build_biased_model(), device="cuda")
    assert pick_device("auto") == torch.device("cpu")
    with pytest.raises(ModelError, match="auto, cpu or cuda"):
        pick_device("tpu")
