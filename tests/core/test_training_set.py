"""What a round trains and is measured on, and where the folder's models live."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from maskdesk.core.errors import MaskdeskError
from maskdesk.core.holdout import split
from maskdesk.core.instances import Instance, Origin
from maskdesk.core.masks import CropMask
from maskdesk.core.project import ImageStatus, Project
from maskdesk.core.project_models import (
    current_model,
    list_models,
    next_name,
    publish,
    set_current_model,
)
from maskdesk.core.training_set import collect
from maskdesk.datasets.reviewing import review, truth, write_folder

SEED = 3


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    write_folder(tmp_path / "shapes", 12, SEED)
    return tmp_path / "shapes"


def _blob(score: float | None, origin: Origin = Origin.MODEL) -> Instance:
    return Instance(1, CropMask(5, 5, np.ones((8, 8), bool)), score=score, origin=origin)


def test_reviewed_images_only_as_an_export_writes_them(folder: Path) -> None:
    with Project.open(folder) as project:
        names = [r.path for r in project.images()]
        review(project, names[:8], SEED)
        first = project.image_by_path(names[0])
        assert first is not None
        # Left on a reviewed image: a shown prediction counts, one below 0.5 does not.
        project.add_instances(first.id, [_blob(0.7), _blob(0.3)])
        project.set_status(first.id, ImageStatus.REVIEWED)
        other = project.image_by_path(names[9])
        assert other is not None
        project.add_instance(other.id, _blob(None, Origin.HUMAN))  # not reviewed: left out
        training = collect(project)
    train, held = split(names[:8])
    assert [im.file_name for im in training.train] == train
    assert [im.file_name for im in training.held_out] == held
    expected = {name: [0, 0] for name in ("circle", "rectangle", "triangle", "star")}
    for path in names[:8]:
        for inst in truth(path, SEED):
            expected[("circle", "rectangle", "triangle", "star")[inst.category_id - 1]][
                path in held
            ] += 1
    expected["circle"][names[0] in held] += 1  # the shown prediction (category 1 = circle)
    assert training.counts == {k: tuple(v) for k, v in expected.items() if sum(v)}
    gt = training.coco(held_out=True)
    assert [im["file_name"] for im in gt["images"]] == held
    assert len(gt["annotations"]) == sum(v[1] for v in expected.values())


def test_too_few_reviewed_images_are_refused_with_what_to_do(folder: Path) -> None:
    with Project.open(folder) as project:
        review(project, [r.path for r in project.images()][:2], SEED)
        training = collect(project)
    with pytest.raises(
        MaskdeskError, match="2 images are marked reviewed; training needs at least 3"
    ):
        training.check()


def test_warnings_name_thin_classes_and_classes_not_held_out(folder: Path) -> None:
    with Project.open(folder) as project:
        review(project, [r.path for r in project.images()][:6], SEED)
        training = collect(project)
    warnings = " ".join(training.warnings())
    for name, (train, held) in training.counts.items():
        assert (f"{name!r} has only" in warnings) == (train + held < 5)
        assert (f"{name!r} has no instance on a held-out image" in warnings) == (held == 0)


def test_models_cards_and_the_folders_model(folder: Path, tmp_path: Path) -> None:
    with Project.open(folder) as project:
        assert current_model(project) is None and list_models(project) == []
        assert next_name(project) == "model-1"
        weights = tmp_path / "w.pt"
        weights.write_bytes(b"weights")
        card = publish(project, "model-1", weights, {"held_out": ["a.png"], "classes": ["c"]})
        assert card.path == project.models_dir / "model-1.pt" and not weights.exists()
        saved = json.loads((project.models_dir / "model-1.json").read_text())
        assert saved["name"] == "model-1" and saved["held_out"] == ["a.png"]
        assert next_name(project) == "model-2"
        set_current_model(project, str(card.path))
        # Kept relative to the store, so a folder moved with its project keeps its model.
        assert project.setting("model") == "models/model-1.pt"
        assert current_model(project) == str(card.path)
        set_current_model(project, "coco-v2")
        assert current_model(project) == "coco-v2"
        (project.models_dir / "model-2.pt").write_bytes(b"no card")  # skipped: no card
        assert [c.name for c in list_models(project)] == ["model-1"]
        set_current_model(project, str(card.path))
    moved = folder.rename(tmp_path / "moved")
    with Project.open(moved) as project:
        assert current_model(project) == str(
            moved.resolve() / ".maskdesk" / "models" / "model-1.pt"
        )
