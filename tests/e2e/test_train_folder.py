"""`maskdesk train FOLDER`: rounds on a folder's reviewed images, as a user runs them.

The fixture model is the folder's current model; the folder also holds `star`, a class it has
never seen. One epoch of the tiny model on a dozen small pictures keeps a round to seconds.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from maskdesk import cli
from maskdesk.core.holdout import split
from maskdesk.core.instances import Origin, Review
from maskdesk.core.project import ImageStatus, Project
from maskdesk.core.project_models import current_model, list_models, set_current_model
from maskdesk.datasets.reviewing import review, write_folder

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "shapes-tiny.pt"
SEED = 11


def _train(folder: Path, *more: str) -> int:
    return cli.main(["train", str(folder), "--epochs", "1", "--threads", "1", *more])


def _cocoeval(gt: dict, results: list[dict]) -> tuple[float, float]:
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        ev = COCOeval(coco_gt, coco_gt.loadRes(results), "segm")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return float(ev.stats[0]), float(ev.stats[1])


@pytest.fixture(scope="module")
def rounds(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Two rounds: 10 reviewed images, then 6 more; the first model adopted."""
    folder = tmp_path_factory.mktemp("loop") / "shapes"
    names = write_folder(folder, 20, SEED)
    with Project.open(folder) as project:
        review(project, names[:10], SEED)
        set_current_model(project, str(FIXTURE))
    assert _train(folder, "--adopt", "always") == 0
    with Project.open(folder) as project:
        first = list_models(project)[0]
        adopted = current_model(project)
        review(project, names[10:16], SEED)
    assert _train(folder, "--current", str(FIXTURE)) == 0
    with Project.open(folder) as project:
        second = list_models(project)[1]
        after = current_model(project)
    return {
        "folder": folder,
        "names": names,
        "first": first,
        "second": second,
        "adopted": adopted,
        "after": after,
    }


def test_a_round_writes_a_model_with_its_card(rounds: dict) -> None:
    first, folder = rounds["first"], rounds["folder"]
    assert first.path == folder / ".maskdesk" / "models" / "model-1.pt"
    data = first.data
    assert data["base"] == str(FIXTURE) and data["classes"] == [
        "circle",
        "rectangle",
        "triangle",
        "star",
    ]
    train, held = split(rounds["names"][:10])
    assert data["train_paths"] == train and data["held_out"] == held
    assert data["train_images"] == len(train) and data["iterations"] == -(-len(train) // 4)
    assert data["settings"]["epochs"] == 1 and data["duration_s"] > 0 and data["date"]
    # Nothing of the run is left beside the models.
    leftovers = sorted(p.name for p in first.path.parent.iterdir())
    assert leftovers == [
        f"model-{n}.{ext}" for n in (1, 2) for ext in ("evaluation.json", "json", "pt")
    ]


def test_the_cards_figures_are_cocoeval_s_on_the_held_out_predictions(rounds: dict) -> None:
    card = rounds["first"]
    saved = json.loads(card.path.with_name("model-1.evaluation.json").read_text())
    assert [im["file_name"] for im in saved["ground_truth"]["images"]] == card.held_out
    for which in ("current", "new"):
        figures = card.data["evaluation"][which]
        ap, ap50 = _cocoeval(saved["ground_truth"], saved[which])
        assert (figures["ap"], figures["ap50"]) == (pytest.approx(ap), pytest.approx(ap50))
    # The fixture has never seen a star; its held-out star AP is 0, not missing.
    assert card.data["evaluation"]["current"]["per_class"]["star"] == 0.0
    assert card.data["evaluation"]["current"]["model"] == str(FIXTURE)


def test_adopting_follows_the_rule_and_the_split_is_kept(rounds: dict) -> None:
    assert rounds["adopted"] == str(rounds["first"].path)  # --adopt always
    second = rounds["second"]  # no --adopt: the folder's model stays
    assert rounds["after"] == str(rounds["first"].path)
    old = second.data["evaluation"]["current"]["ap"]
    assert second.data["adopt"] == (second.data["evaluation"]["new"]["ap"] >= old)
    # An image stays on its side: round 1's held-out images are still held out, and no image
    # round 1 trained on is measured in round 2.
    first = rounds["first"].data
    assert set(first["held_out"]) <= set(second.held_out)
    assert not set(first["train_paths"]) & set(second.held_out)
    assert set(second.data["train_paths"]) | set(second.held_out) == set(rounds["names"][:16])


def test_predict_uses_the_folders_model_and_replaces_only_pending_predictions(
    rounds: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, names = rounds["folder"], rounds["names"]
    with Project.open(folder) as project:
        set_current_model(project, str(FIXTURE))
    assert cli.main(["predict", str(folder), "-o", str(tmp_path / "a.json")]) == 0
    with Project.open(folder) as project:
        unreviewed = [r for r in project.images() if r.status is not ImageStatus.REVIEWED]
        assert {r.model for r in unreviewed} == {str(FIXTURE)}
        # A person decided some predictions on an image not yet reviewed.
        target = unreviewed[0]
        kept = project.instances(target.id)[:2]
        assert len(kept) == 2
        project.update_instance(kept[0].with_changes(review=Review.ACCEPTED))
        project.update_instance(kept[1].with_changes(review=Review.REJECTED))
        decided = {i.id: i for i in project.instances(target.id) if i.decided}
        pending = {i.id for r in unreviewed for i in project.instances(r.id) if not i.decided}
        reviewed = {
            r.path: project.instances(r.id)
            for r in project.images()
            if r.status is ImageStatus.REVIEWED
        }
        set_current_model(project, str(rounds["first"].path))  # as adopting does
    capsys.readouterr()
    assert cli.main(["predict", str(folder), "-o", str(tmp_path / "b.json")]) == 0
    assert f"using the folder's model {rounds['first'].path}" in capsys.readouterr().err
    with Project.open(folder) as project:
        records = project.images()
        assert {r.model for r in records if r.status is not ImageStatus.REVIEWED} == {
            str(rounds["first"].path)
        }
        now = {i.id: i for r in records for i in project.instances(r.id)}
        assert not pending & set(now)  # every older pending prediction was replaced
        assert all(now[i] == inst for i, inst in decided.items())  # decisions stay
        assert {
            r.path: project.instances(r.id) for r in records if r.status is ImageStatus.REVIEWED
        } == reviewed
        assert len(reviewed) == 16 and names[0] in reviewed
        assert all(i.origin is Origin.HUMAN for v in reviewed.values() for i in v)


def test_too_few_reviewed_images_is_a_message_and_a_json_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "few"
    names = write_folder(folder, 4, SEED)
    with Project.open(folder) as project:
        review(project, names[:2], SEED)
    assert cli.main(["train", str(folder), "--json"]) == 2
    out, err = capsys.readouterr()
    event = json.loads(out.splitlines()[-1])
    assert event["event"] == "error"
    assert "2 images are marked reviewed; training needs at least 3" in event["message"]
    assert "Traceback" not in err


def test_sigterm_stops_a_round_and_keeps_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "stop"
    names = write_folder(folder, 12, SEED)
    with Project.open(folder) as project:
        review(project, names, SEED)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "maskdesk",
            "train",
            str(folder),
            "--json",
            "--epochs",
            "50",
            "--current",
            str(FIXTURE),
            "--threads",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    events = []
    for line in proc.stdout:
        events.append(json.loads(line))
        if events[-1]["event"] == "iteration":
            break
    assert events[0]["event"] == "started" and Path(events[0]["run"]).is_dir()
    asked = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 130
    assert time.monotonic() - asked < 5
    models = folder / ".maskdesk" / "models"
    assert list(models.iterdir()) == []
    with Project.open(folder) as project:
        assert current_model(project) is None
        assert all(r.status is ImageStatus.REVIEWED for r in project.images())
    assert not os.path.exists(events[0]["run"])
