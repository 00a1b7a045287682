"""A model's predictions on the held-out images of a training round, as COCO results.

The model runs through the same Predictor as Detect and Pre-label (score floor 0.05, the
window's masks). Its classes are matched to the ground truth's by name; a prediction of a class
the ground truth does not have cannot be right or wrong about it, and is left out.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path, PurePosixPath

from maskdesk.core.images import load_rgb
from maskdesk.inference.models import LoadedModel
from maskdesk.inference.predictor import Predictor


def held_out_results(
    loaded: LoadedModel,
    gt: dict,
    folder: Path,
    device: str = "auto",
    should_stop: Callable[[], bool] | None = None,
) -> list[dict]:
    """COCO results (image_id, category_id, segmentation RLE, score) for the images of `gt`,
    read from `folder`."""
    predictor = Predictor(loaded, device)
    by_name = {c["name"]: c["id"] for c in gt["categories"]}
    model_names = {c.id: c.name for c in predictor.categories}
    results = []
    for image in gt["images"]:
        if should_stop is not None and should_stop():
            raise KeyboardInterrupt
        rgb = load_rgb(folder.joinpath(*PurePosixPath(image["file_name"]).parts))
        height, width = rgb.shape[:2]
        for inst in predictor.predict(rgb):
            category = by_name.get(model_names.get(inst.category_id, ""))
            if category is None or inst.score is None:
                continue
            results.append(
                {
                    "image_id": image["id"],
                    "category_id": category,
                    "segmentation": inst.mask.to_rle(width, height),
                    "score": inst.score,
                }
            )
    return results
