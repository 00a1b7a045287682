"""Model registry and weights: the hub cache, downloads from a local server, offline mode, and
model files (maskdesk checkpoints, plain state dicts). No real weights are ever needed: the
state dicts come from torchvision models built with weights=None."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import os
import pickle
import re
import socket
import threading
import zipfile
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import torch

from maskdesk.cli_messages import describe
from maskdesk.core.categories import Category
from maskdesk.core.errors import ModelError
from maskdesk.inference import models
from maskdesk.inference.architectures import (
    RESNET50_FPN,
    RESNET50_FPN_V2,
    TINY,
    build_architecture,
)
from maskdesk.inference.checkpoints import Checkpoint, save_checkpoint
from maskdesk.inference.models import DownloadCancelled, load_model, weights_path

# torchvision's v1 COCO file predates the renaming of the RPN and FPN convs.
_OLD_V1_NAMES = (
    (re.compile(r"^rpn\.head\.conv\.0\.0\."), "rpn.head.conv."),
    (re.compile(r"^(backbone\.fpn\.(?:inner|layer)_blocks\.\d)\.0\."), r"\1."),
)

# COCO's 80 category ids: 1..90 without the ten ids the 2014 paper dropped.
COCO_IDS = set(range(1, 91)) - {12, 26, 29, 30, 45, 66, 68, 69, 71, 83}


def _coco_state_dict(architecture: str, num_classes: int = 91) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    state = build_architecture(architecture, num_classes).state_dict()
    # torchvision's files come from FrozenBatchNorm2d backbones: no num_batches_tracked there.
    state = {
        k: v
        for k, v in state.items()
        if not (k.startswith("backbone.body.") and k.endswith("num_batches_tracked"))
    }
    if architecture == RESNET50_FPN:
        for pattern, old in _OLD_V1_NAMES:
            state = {pattern.sub(old, k): v for k, v in state.items()}
        assert "rpn.head.conv.weight" in state and "backbone.fpn.inner_blocks.0.weight" in state
    return state


@pytest.fixture(scope="module")
def state_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("states")
    files = {}
    for architecture in (RESNET50_FPN, RESNET50_FPN_V2):
        files[architecture] = folder / f"{architecture}.pth"
        torch.save(_coco_state_dict(architecture), files[architecture])
    return files


@pytest.fixture
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "torch-home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    attempts: list[object] = []

    def connect(self: socket.socket, address: object) -> None:
        attempts.append(address)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", connect)
    return attempts


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """(base URL, folder it serves) for a local HTTP server on 127.0.0.1."""
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(served))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", served
    finally:
        httpd.shutdown()
        httpd.server_close()


def _named_file(folder: Path, stem: str, data: bytes, suffix: str = ".bin") -> Path:
    path = folder / f"{stem}-{hashlib.sha256(data).hexdigest()[:8]}{suffix}"
    path.write_bytes(data)
    return path


# -- named models from the cache -------------------------------------------------------------


def test_weights_path_is_in_the_torch_hub_cache(torch_home: Path) -> None:
    assert weights_path("coco-v1") == (
        torch_home / "hub" / "checkpoints" / "maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth"
    )
    assert weights_path("coco-v2").name == "maskrcnn_resnet50_fpn_v2_coco-73cbd019.pth"
    with pytest.raises(ModelError, match="coco-v1 or coco-v2"):
        weights_path("coco-v9")


@pytest.mark.parametrize(
    ("name", "architecture"), [("coco-v1", RESNET50_FPN), ("coco-v2", RESNET50_FPN_V2)]
)
def test_named_model_loads_from_the_cache_without_network(
    name: str,
    architecture: str,
    state_files: dict[str, Path],
    torch_home: Path,
    no_network: list[object],
) -> None:
    cached = weights_path(name)
    cached.parent.mkdir(parents=True)
    os.link(state_files[architecture], cached)

    loaded = load_model(name, offline=True)

    assert no_network == []
    assert (loaded.name, loaded.architecture) == (name, architecture)
    assert len(loaded.categories) == 80
    assert {c.id for c in loaded.categories} == COCO_IDS
    by_id = {c.id: c.name for c in loaded.categories}
    assert (by_id[1], by_id[3], by_id[90]) == ("person", "car", "toothbrush")
    assert all(c.name not in ("N/A", "__background__") for c in loaded.categories)
    assert loaded.label_to_category == {i: i for i in COCO_IDS}
    assert not loaded.model.training
    expected = torch.load(state_files[architecture], weights_only=True)
    got = loaded.model.state_dict()
    key = "roi_heads.mask_predictor.mask_fcn_logits.weight"
    assert torch.equal(got[key], expected[key])
    if name == "coco-v1":  # as torchvision does for these Detectron-born weights
        model: Any = loaded.model
        assert model.backbone.body.bn1.eps == 0.0


def test_offline_without_weights_names_file_url_path_and_alternative(
    torch_home: Path, no_network: list[object]
) -> None:
    with pytest.raises(ModelError) as caught:
        load_model("coco-v2", offline=True)
    message = str(caught.value)
    assert no_network == []
    file_name = "maskrcnn_resnet50_fpn_v2_coco-73cbd019.pth"
    assert f"({file_name})" in message
    assert f"https://download.pytorch.org/models/{file_name}" in message
    assert str(torch_home / "hub" / "checkpoints" / file_name) in message
    assert "offline mode forbids downloading them" in message
    # No flag in the message itself: each command adds its own for the setting named.
    assert "--" not in message and caught.value.setting == "model"
    assert message.endswith("or give a model file you have.")
    assert describe(caught.value, {"model": "--model PATH"}).endswith(
        "or give a model file you have (--model PATH)."
    )
    assert not weights_path("coco-v2").exists()


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(ModelError, match="coco-v1 or coco-v2") as caught:
        load_model("coco-v3", offline=True)
    assert caught.value.setting == "model" and "--" not in str(caught.value)


# -- downloads -------------------------------------------------------------------------------


def test_download_reports_progress_and_places_the_verified_file(
    tmp_path: Path, server: tuple[str, Path]
) -> None:
    base, served = server
    data = os.urandom(3 * models.CHUNK_BYTES + 12345)
    source = _named_file(served, "blob", data)
    dest = tmp_path / "cache" / source.name
    calls: list[tuple[int, int]] = []

    models.download(f"{base}/{source.name}", dest, progress=lambda d, t: calls.append((d, t)))

    assert dest.read_bytes() == data
    assert calls[0] == (0, len(data)) and calls[-1] == (len(data), len(data))
    assert len(calls) == 5  # the start, then one call per chunk
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert sorted(p.name for p in dest.parent.iterdir()) == [dest.name]


def test_download_with_a_wrong_hash_leaves_nothing(
    tmp_path: Path, server: tuple[str, Path]
) -> None:
    base, served = server
    (served / "blob-deadbeef.bin").write_bytes(b"these bytes do not hash to deadbeef")
    dest = tmp_path / "cache" / "blob-deadbeef.bin"
    with pytest.raises(ModelError, match="sha256"):
        models.download(f"{base}/blob-deadbeef.bin", dest)
    assert list(dest.parent.iterdir()) == []


def test_download_cancelled_from_progress_leaves_nothing(
    tmp_path: Path, server: tuple[str, Path]
) -> None:
    base, served = server
    source = _named_file(served, "blob", os.urandom(2 * models.CHUNK_BYTES))
    dest = tmp_path / "cache" / source.name
    calls: list[int] = []

    def progress(done: int, total: int) -> bool:
        calls.append(done)
        return done == 0  # stop after the first chunk

    with pytest.raises(DownloadCancelled):
        models.download(f"{base}/{source.name}", dest, progress=progress)
    assert calls == [0, models.CHUNK_BYTES]
    assert list(dest.parent.iterdir()) == []


def test_named_model_downloaded_when_missing(
    state_files: dict[str, Path],
    torch_home: Path,
    server: tuple[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base, served = server
    data = state_files[RESNET50_FPN].read_bytes()
    file_name = f"maskrcnn_resnet50_fpn_coco-{hashlib.sha256(data).hexdigest()[:8]}.pth"
    os.link(state_files[RESNET50_FPN], served / file_name)
    entry = dataclasses.replace(models._NAMED["coco-v1"], url=f"{base}/{file_name}")
    monkeypatch.setitem(models._NAMED, "coco-v1", entry)
    calls: list[tuple[int, int]] = []

    loaded = load_model("coco-v1", progress=lambda d, t: calls.append((d, t)))

    assert weights_path("coco-v1") == torch_home / "hub" / "checkpoints" / file_name
    assert weights_path("coco-v1").read_bytes() == data
    assert calls[-1] == (len(data), len(data))
    assert len(loaded.categories) == 80


def test_failed_download_names_file_url_path_and_alternative(
    torch_home: Path, server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, _served = server
    url = f"{base}/maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth"  # not served: 404
    entry = dataclasses.replace(models._NAMED["coco-v1"], url=url)
    monkeypatch.setitem(models._NAMED, "coco-v1", entry)
    with pytest.raises(ModelError) as caught:
        load_model("coco-v1")
    message = str(caught.value)
    assert "HTTP 404" in message and url in message
    assert str(weights_path("coco-v1")) in message and "give a model file you have" in message
    assert "--" not in message and caught.value.setting == "model"
    assert list(weights_path("coco-v1").parent.iterdir()) == []


# -- model files -----------------------------------------------------------------------------


@pytest.mark.parametrize("architecture", [RESNET50_FPN, RESNET50_FPN_V2])
def test_plain_coco_state_dict_is_recognized_from_its_keys(
    architecture: str, state_files: dict[str, Path], no_network: list[object]
) -> None:
    path = state_files[architecture]
    loaded = load_model(str(path))
    assert (loaded.name, loaded.architecture) == (str(path), architecture)
    assert {c.id for c in loaded.categories} == COCO_IDS
    assert loaded.note == ""
    assert no_network == []


def test_plain_state_dict_with_other_classes_gets_numbered_names(tmp_path: Path) -> None:
    state = _coco_state_dict(RESNET50_FPN, num_classes=4)
    path = tmp_path / "three.pth"
    torch.save({"model": state}, path)  # as torchvision's reference scripts wrap it
    loaded = load_model(str(path))
    assert loaded.architecture == RESNET50_FPN
    assert [c.name for c in loaded.categories] == ["class 1", "class 2", "class 3"]
    assert loaded.label_to_category == {1: 1, 2: 2, 3: 3}
    assert "no category names" in loaded.note


def test_maskdesk_checkpoint_keeps_categories_and_input_size(tmp_path: Path) -> None:
    categories = [Category(5, "bolt"), Category(9, "nut")]
    model = build_architecture(TINY, 3, min_size=192, max_size=256)
    path = tmp_path / "parts.pt"
    save_checkpoint(Checkpoint(TINY, categories, model.state_dict(), 192, 256), path)

    loaded = load_model(str(path))

    assert loaded.architecture == TINY
    assert loaded.categories == categories
    assert loaded.label_to_category == {1: 5, 2: 9}
    transform: Any = loaded.model.transform
    assert (tuple(transform.min_size), transform.max_size) == ((192,), 256)
    assert not loaded.model.training


def test_missing_file_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError) as caught:
        load_model(str(tmp_path / "nowhere" / "model.pt"))
    assert str(caught.value) == (
        f"Model file {tmp_path / 'nowhere' / 'model.pt'} does not exist; check the path, "
        "or give another file."
    )
    assert caught.value.setting == "model"


def _write_zip(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("model/weights.npy", b"\x93NUMPY")


def _save_pickled_model(path: Path) -> None:
    torch.save(torch.nn.Linear(2, 2), path)  # the whole module object, not its state_dict


@pytest.mark.parametrize(
    ("name", "write", "what_it_is"),
    [
        ("junk.bin", lambda p: p.write_bytes(os.urandom(4096)), "it is not a PyTorch file at all"),
        (
            "notes.txt",
            lambda p: p.write_text("epoch 3: loss 0.41\nepoch 4: loss 0.37\n"),
            "it is not a PyTorch file at all",
        ),
        ("empty.pt", lambda p: p.write_bytes(b""), "it is empty"),
        (
            "weights.pkl",
            lambda p: p.write_bytes(pickle.dumps({"w": [0.1, 0.2]})),
            "it is a Python pickle, not a PyTorch file",
        ),
        ("weights.zip", _write_zip, "it is a zip archive, not a PyTorch file"),
        (
            "cut.pt",
            lambda p: p.write_bytes(_torch_bytes({"w": torch.zeros(1000)})[:700]),
            "it is a PyTorch file, but damaged or cut short",
        ),
        (
            "whole-model.pt",
            _save_pickled_model,
            "it is a PyTorch file holding Python objects, not only tensors (a whole pickled "
            "model, perhaps), which maskdesk does not load because unpickling them can run "
            "code; save the model's state_dict() instead",
        ),
        (
            "optimizer.pt",
            lambda p: torch.save({"epoch": 3, "lr": 0.1}, p),
            "it is a PyTorch file without model weights: a dict of 'epoch', 'lr'",
        ),
        (
            "tensor.pt",
            lambda p: torch.save(torch.zeros(3), p),
            "it is a PyTorch file holding a Tensor, not model weights",
        ),
        (
            "other-net.pt",
            lambda p: torch.save({"conv.weight": torch.zeros(3, 3), "fc.bias": torch.zeros(3)}, p),
            "it is a state dict of 2 tensors, but their names match neither "
            "maskrcnn_resnet50_fpn nor maskrcnn_resnet50_fpn_v2",
        ),
    ],
)
def test_a_file_that_is_no_model_says_what_it_is_instead(
    tmp_path: Path, name: str, write: Any, what_it_is: str
) -> None:
    path = tmp_path / name
    write(path)
    with pytest.raises(ModelError) as caught:
        load_model(str(path))
    message = str(caught.value)
    assert message.startswith(
        f"{path} is not a maskdesk checkpoint or a torchvision Mask R-CNN state dict "
        f"({what_it_is}); "
    )
    # What torch raised inside (KeyError, UnpicklingError, ...) is no news to the user.
    assert "KeyError" not in message and "Unpickling" not in message and "--" not in message


def _torch_bytes(obj: object) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def test_a_bad_file_in_the_weights_cache_says_to_replace_it(
    torch_home: Path, no_network: list[object]
) -> None:
    cached = weights_path("coco-v1")
    cached.parent.mkdir(parents=True)
    cached.write_text("<html>proxy login page</html>")
    with pytest.raises(ModelError) as caught:
        load_model("coco-v1", offline=True)
    assert str(caught.value) == (
        f"{cached} is not the weights file it should be (it is not a PyTorch file at all); "
        "delete it so that it is downloaded again, or place a good copy of "
        f"{models._NAMED['coco-v1'].url} there."
    )
    # Choosing another model is not the fix here, so no flag is to be added.
    assert caught.value.setting is None


def test_state_dict_not_matching_its_architecture_is_a_model_error(tmp_path: Path) -> None:
    state = {
        "rpn.head.conv.weight": torch.zeros(256, 256, 3, 3),
        "roi_heads.box_head.fc6.weight": torch.zeros(1024, 12544),
        "roi_heads.box_predictor.cls_score.weight": torch.zeros(5, 1024),
    }
    path = tmp_path / "partial.pth"
    torch.save(state, path)
    with pytest.raises(ModelError, match="partial.pth does not match maskrcnn_resnet50_fpn"):
        load_model(str(path))
