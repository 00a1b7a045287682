"""`maskdesk train` as a user runs it: what it prints, what it exits with, what it writes.

The tiny model on a handful of small synthetic images keeps each run to a few seconds.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import pytest
import torch

from maskdesk import cli
from maskdesk.datasets import shapes
from maskdesk.inference import training
from maskdesk.inference.checkpoints import read_checkpoint
from maskdesk.inference.training import resume_path_for
from maskdesk.inference.training_data import collate

NOT_A_MODEL = "is not a maskdesk checkpoint or a torchvision Mask R-CNN state dict"


@pytest.fixture(scope="module")
def shapes_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("shapes")
    shapes.write_dataset(root, count=5, seed=7, size=96)  # 4 to train on, 1 held out
    return root


def _train(*args: str) -> int:
    # One torch thread: on a shared 2-core machine, two threads fighting other processes
    # for the cores run several times slower than one.
    return cli.main(["train", *args, "--threads", "1"])


def _start(root: Path, out: Path, *more: str) -> list[str]:
    coco, images = root / "annotations.json", root / "images"
    return ["--coco", str(coco), "--images", str(images), "-o", str(out), "--base", "tiny", *more]


def _interrupt_at_batch(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    """Ctrl-C while the n-th batch is being put together."""
    calls: list[int] = []

    def interrupting_collate(batch: list) -> object:
        calls.append(1)
        if len(calls) == n:
            raise KeyboardInterrupt
        return collate(batch)

    monkeypatch.setattr(training, "collate", interrupting_collate)


def test_resume_alone_continues_an_interrupted_run(
    shapes_set: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    # Relative paths at the start, another working folder at the resume: the state keeps
    # absolute ones.
    monkeypatch.chdir(shapes_set)
    out = tmp_path / "m.pt"
    _interrupt_at_batch(monkeypatch, 2)
    start = ["--coco", "annotations.json", "--images", "images", "-o", str(out)]
    assert _train(*start, "--base", "tiny", "--epochs", "2", "--batch", "2") == 130
    err = capsys.readouterr().err
    assert f"continue with: maskdesk train --resume {out}" in err
    assert "interrupted after 1 iteration;" in err

    monkeypatch.undo()  # the real collate, and the test's own working folder
    monkeypatch.chdir(tmp_path)
    assert _train("--resume", str(out)) == 0
    err = capsys.readouterr().err
    assert (
        f"maskdesk: resuming after 0 epochs of 2: --coco {shapes_set / 'annotations.json'} "
        f"--images {shapes_set / 'images'} -o {out}\n"
    ) in err
    assert "it 2/4 epoch 1/2" in err and "it 1/4" not in err  # batch 1 was done before
    assert "trained 4 iterations (2 epochs) on 4 images; best val mask AP" in err
    summary = read_checkpoint(out).training
    assert (summary["iterations"], summary["epochs"], summary["batch"]) == (4, 2, 2)
    assert not resume_path_for(out).exists()


def test_resume_from_the_state_file_and_flags_given_again(
    shapes_set: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    out = tmp_path / "m.pt"
    _interrupt_at_batch(monkeypatch, 3)  # the first batch of epoch 2: one epoch is done
    assert _train(*_start(shapes_set, out, "--epochs", "2", "--batch", "2")) == 130
    state = resume_path_for(out)
    monkeypatch.undo()
    capsys.readouterr()

    # The split and the batch order are fixed by the run: a different --batch is refused.
    assert _train("--resume", str(state), "--batch", "3") == 2
    assert capsys.readouterr().err == (
        "maskdesk: The interrupted run used --batch 2; it fixes the validation split and the "
        "batch order, so a resumed run keeps it: leave --batch out or give 2.\n"
    )
    # Fewer epochs than are done cannot go on; the message says how many would.
    assert _train("--resume", str(state), "--epochs", "1") == 2
    assert capsys.readouterr().err.endswith(
        "maskdesk: The interrupted run has already done 1 epoch; ask for more to go on "
        "(--epochs 2).\n"
    )
    # A longer run, the same batch, another base: the new total is used, the base is not.
    args = ["--epochs", "3", "--batch", "2", "--base", "coco-v2", "--offline"]
    assert _train("--resume", str(state), *args) == 0
    err = capsys.readouterr().err
    assert "maskdesk: --epochs 3 replaces the interrupted run's 2\n" in err
    assert (
        "maskdesk: --base is not used when resuming: the weights come from the saved state\n"
    ) in err
    assert "it 3/6 epoch 2/3" in err and "it 2/6" not in err
    assert "trained 6 iterations (3 epochs) on 4 images" in err
    assert read_checkpoint(out).training["iterations"] == 6


def test_resume_of_a_finished_run_says_to_use_it_as_the_base(
    shapes_set: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "done.pt"
    assert _train(*_start(shapes_set, out, "--epochs", "1", "--batch", "4")) == 0
    capsys.readouterr()
    assert _train("--resume", str(out)) == 2
    assert capsys.readouterr().err == (
        f"maskdesk: No training state found for {out} (looked for {out}.resume.pt); a "
        "finished run keeps none. To train further from a finished model, give it as the base "
        f"model (--base {out}).\n"
    )


def test_one_of_everything_is_said_in_the_singular(tmp_path: Path, capsys) -> None:
    root = tmp_path / "two"
    shapes.write_dataset(root, count=2, seed=3, size=96)
    data = json.loads((root / "annotations.json").read_text())
    data["annotations"].append(dict(data["annotations"][0], id=999, iscrowd=1))
    (root / "annotations.json").write_text(json.dumps(data))
    out = tmp_path / "one.pt"
    code = _train(*_start(root, out, "--epochs", "1", "--batch", "1", "--val-fraction", "0.5"))
    assert code == 0
    err = capsys.readouterr().err
    assert "skipped 1 annotation: crowd\n" in err
    assert "trained 1 iteration (1 epoch) on 1 image; best val mask AP " in err
    assert err.endswith(f"; model written to {out}\n")


@pytest.mark.parametrize(
    ("name", "content", "what_it_is"),
    [
        ("junk.bin", os.urandom(2048), "it is not a PyTorch file at all"),
        ("readme.txt", b"trained on 2,000 shapes\n", "it is not a PyTorch file at all"),
        (
            "tensors.pt",
            {"encoder.weight": torch.ones(4, 4), "encoder.bias": torch.zeros(4)},
            "it is a state dict of 2 tensors, but their names match neither "
            "maskrcnn_resnet50_fpn nor maskrcnn_resnet50_fpn_v2",
        ),
        (
            "optimizer.pt",
            {"step": 10, "momentum": 0.9},
            "it is a PyTorch file without model weights: a dict of 'step', 'momentum'",
        ),
    ],
)
def test_a_base_that_is_no_model_says_what_it_is(
    shapes_set: Path, tmp_path: Path, name: str, content: object, what_it_is: str, capsys
) -> None:
    base = tmp_path / name
    if isinstance(content, bytes):
        base.write_bytes(content)
    else:
        torch.save(content, base)
    out = tmp_path / "m.pt"
    assert _train(*_start(shapes_set, out)[:-2], "--base", str(base)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"maskdesk: {base} {NOT_A_MODEL} ({what_it_is}); ")
    assert "KeyError" not in err and "Unpickling" not in err and "Traceback" not in err
    if what_it_is.startswith("it is not a PyTorch"):  # another file would do
        assert err.endswith("; give one of those (--base PATH).\n")
    assert not out.exists()


def test_missing_base_weights_offline_point_at_base_not_model(
    shapes_set: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-cache"))
    args = _start(shapes_set, tmp_path / "m.pt")[:-2]
    assert _train(*args, "--base", "coco-v1", "--offline") == 2
    err = capsys.readouterr().err
    assert "are not in the cache and offline mode forbids downloading them" in err
    assert err.endswith("or give a model file you have (--base PATH).\n")
    assert "--model" not in err


def test_unknown_base_suggests_the_closest_name(shapes_set: Path, tmp_path: Path, capsys) -> None:
    assert _train(*_start(shapes_set, tmp_path / "m.pt")[:-2], "--base", "tinyy") == 2
    assert capsys.readouterr().err == (
        "maskdesk: Unknown base model 'tinyy': use coco-v1, coco-v2 or tiny, or give the path "
        "of a maskdesk checkpoint or a torchvision Mask R-CNN state dict (--base tiny).\n"
    )


def test_image_folder_problems_name_the_images_flag(
    shapes_set: Path, tmp_path: Path, capsys
) -> None:
    coco = shapes_set / "annotations.json"
    out = str(tmp_path / "m.pt")
    assert _train("--coco", str(coco), "--images", str(tmp_path / "nope"), "-o", out) == 2
    assert capsys.readouterr().err == (
        f"maskdesk: Image folder {tmp_path / 'nope'} does not exist; give the folder that the "
        f"file names in {coco} are relative to (--images).\n"
    )
    partial = tmp_path / "partial"
    partial.mkdir()
    for image in sorted((shapes_set / "images").iterdir())[1:]:
        (partial / image.name).symlink_to(image)
    first = sorted((shapes_set / "images").iterdir())[0].name
    assert _train("--coco", str(coco), "--images", str(partial), "-o", out) == 2
    assert capsys.readouterr().err == (
        f"maskdesk: 1 image of {coco} is not in {partial}: {first}; give the folder that the "
        "COCO file's names are relative to (--images).\n"
    )


def test_starting_without_the_data_is_a_usage_error(tmp_path: Path, capsys) -> None:
    assert _train("-o", str(tmp_path / "m.pt")) == 2
    assert capsys.readouterr().err == (
        "maskdesk: --coco ANN.json and --images DIR are needed to start training (or --resume "
        "MODEL.pt to continue an interrupted run).\n"
    )


@pytest.mark.parametrize(
    ("flag", "value", "complaint"),
    [
        ("--epochs", "0", "argument --epochs: 0 is below 1"),
        ("--batch", "two", "argument --batch: 'two' is not a whole number"),
        ("--val-fraction", "1", "argument --val-fraction: 1 is not at least 0 and below 1"),
        ("--lr", "-0.1", "argument --lr: -0.1 is not above 0"),
    ],
)
def test_bad_numbers_are_usage_errors(flag: str, value: str, complaint: str, capsys) -> None:
    with pytest.raises(SystemExit) as caught:
        _train("--resume", "m.pt", flag, value)
    assert caught.value.code == 2
    assert capsys.readouterr().err.rstrip().endswith(complaint)


def test_every_train_option_is_explained_in_its_help(capsys) -> None:
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    text = capsys.readouterr().out
    subparsers = next(
        a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction)
    )
    options = [a for a in subparsers.choices["train"]._actions if a.option_strings]
    assert {"-o", "--device", "--epochs", "--batch", "--seed"} <= {
        s for a in options for s in a.option_strings
    }
    for action in options:
        assert action.help and action.help != argparse.SUPPRESS, action.option_strings
        assert action.help.split()[0] in text  # what --help shows the user
    assert "passes over the training images (10)" in text
    assert "images per iteration (4)" in text
