"""Model registry and weight resolution: coco-v1, coco-v2, or a model file given as PATH.

Named models take their weights from the torch hub cache (TORCH_HOME respected) and, when
they are missing, download them with our own chunked urllib loop (progress, cancel, hash
check, atomic placement). torchvision's builders are never given a Weights enum, so nothing
is ever downloaded behind the user's back.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch
from torchvision.models.detection import (
    MaskRCNN_ResNet50_FPN_V2_Weights,
    MaskRCNN_ResNet50_FPN_Weights,
)
from torchvision.ops import FrozenBatchNorm2d

from maskdesk.core.categories import Category
from maskdesk.core.errors import ModelError
from maskdesk.inference import checkpoints
from maskdesk.inference.architectures import RESNET50_FPN, RESNET50_FPN_V2, build_architecture

MODEL_NAMES = ("coco-v1", "coco-v2")
DEFAULT_MODEL = "coco-v1"
COCO_NUM_CLASSES = 91
CHUNK_BYTES = 1 << 20
DOWNLOAD_TIMEOUT_S = 30.0

# (bytes done, bytes total or 0 when unknown) -> False to cancel the download.
ProgressFn = Callable[[int, int], bool | None]

# torch.hub's convention: the file name carries a sha256 prefix after the last '-'.
_HASH_IN_NAME = re.compile(r"-([a-f0-9]+)\.")

# The box head tells the two torchvision ResNet-50 FPN Mask R-CNNs apart (the RPN head's keys
# do not: torchvision renames v1's old "rpn.head.conv.weight" to "rpn.head.conv.0.0.weight").
_V1_KEY = "roi_heads.box_head.fc6.weight"  # TwoMLPHead
_V2_KEY = "roi_heads.box_head.0.0.weight"  # FastRCNNConvFCHead
_CLS_SCORE = "roi_heads.box_predictor.cls_score.weight"


class DownloadCancelled(ModelError):
    """The progress callback asked to stop; nothing was written."""


@dataclass
class LoadedModel:
    """A model ready for the predictor, with the categories its labels stand for."""

    name: str
    architecture: str
    model: torch.nn.Module
    categories: list[Category]
    label_to_category: dict[int, int]
    note: str = ""  # something the user should know about this model, or ""


@dataclass(frozen=True)
class NamedModel:
    """A downloadable COCO model: architecture, weights URL, label -> name list."""

    name: str
    architecture: str
    url: str
    label_names: tuple[str, ...]  # index = model label = COCO category id

    @property
    def file_name(self) -> str:
        return os.path.basename(urlparse(self.url).path)


_NAMED: dict[str, NamedModel] = {
    "coco-v1": NamedModel(
        "coco-v1",
        RESNET50_FPN,
        MaskRCNN_ResNet50_FPN_Weights.COCO_V1.url,
        tuple(MaskRCNN_ResNet50_FPN_Weights.COCO_V1.meta["categories"]),
    ),
    "coco-v2": NamedModel(
        "coco-v2",
        RESNET50_FPN_V2,
        MaskRCNN_ResNet50_FPN_V2_Weights.COCO_V1.url,
        tuple(MaskRCNN_ResNet50_FPN_V2_Weights.COCO_V1.meta["categories"]),
    ),
}


def coco_categories(label_names: tuple[str, ...] | None = None) -> list[Category]:
    """COCO's 80 categories with their COCO ids (= model labels); placeholders skipped."""
    names = label_names if label_names is not None else _NAMED[DEFAULT_MODEL].label_names
    return [
        Category(label, name)
        for label, name in enumerate(names)
        if name not in ("__background__", "N/A")
    ]


def weights_path(name: str) -> Path:
    """Where the weights of a named model live in the torch hub cache."""
    named = _named(name)
    return Path(torch.hub.get_dir()) / "checkpoints" / named.file_name


def load_model(
    spec: str, *, offline: bool = False, progress: ProgressFn | None = None
) -> LoadedModel:
    """A named model (weights from the cache or downloaded) or a model file, on the cpu."""
    if spec in _NAMED:
        return _load_named(_NAMED[spec], offline=offline, progress=progress)
    path = Path(spec).expanduser()
    if looks_like_a_name(spec):
        raise ModelError(
            f"Unknown model {spec!r}: use {' or '.join(MODEL_NAMES)}, or give the path of "
            f"{checkpoints.MODEL_FILE}.",
            setting="model",
        )
    return _load_file(path, spec)


def looks_like_a_name(spec: str) -> bool:
    """True for a word like "coco-v3" that names no file: a misspelt model name, not a path."""
    path = Path(spec).expanduser()
    return not path.exists() and os.sep not in spec and "/" not in spec and not path.suffix


# -- named models --------------------------------------------------------------------------


def weights_url(name: str) -> str:
    """Where a named model's weights are downloaded from (coco-v1, coco-v2)."""
    return _named(name).url


def _named(name: str) -> NamedModel:
    try:
        return _NAMED[name]
    except KeyError:
        raise ModelError(f"Unknown model {name!r}: use {' or '.join(MODEL_NAMES)}.") from None


def _load_named(named: NamedModel, *, offline: bool, progress: ProgressFn | None) -> LoadedModel:
    path = weights_path(named.name)
    if not path.is_file():
        if offline:
            raise ModelError(
                _missing_message(named, path, "offline mode forbids downloading them"),
                setting="model",
            )
        try:
            download(named.url, path, progress=progress)
        except DownloadCancelled:
            raise
        except ModelError as exc:
            raise ModelError(
                _missing_message(named, path, f"the download failed: {exc}"), setting="model"
            ) from exc
    # A bad file in the cache is fixed in the cache, not by choosing another model.
    fix = f"delete it so that it is downloaded again, or place a good copy of {named.url} there"
    obj = checkpoints.load_file(
        path, expected="the weights file it should be", fix=fix, setting=None
    )
    state = _state_dict_of(obj, path, fix=fix, setting=None)
    model = _build_and_load(
        named.architecture, COCO_NUM_CLASSES, state, path, how_to_fix=fix, setting=None
    )
    if named.architecture == RESNET50_FPN:
        _use_legacy_eps(model)
    categories = coco_categories(named.label_names)
    return LoadedModel(
        name=named.name,
        architecture=named.architecture,
        model=model,
        categories=categories,
        label_to_category={c.id: c.id for c in categories},
    )


def _missing_message(named: NamedModel, path: Path, reason: str) -> str:
    return (
        f"The weights of {named.name} ({named.file_name}) are not in the cache and {reason}. "
        f"Download {named.url} and place it at {path}, "
        "or give a model file you have."
    )


def download(url: str, dest: Path, *, progress: ProgressFn | None = None) -> None:
    """Fetch `url` into `dest` in chunks; verify the sha256 prefix in the file name.

    The bytes go to a temporary file beside `dest` that replaces it only when complete and
    verified, so a failed or cancelled download leaves nothing behind.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
                total = int(response.headers.get("Content-Length") or 0)
                done = 0
                _report(progress, done, total, url)
                while chunk := response.read(CHUNK_BYTES):
                    out.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    _report(progress, done, total, url)
            out.flush()
            os.fsync(out.fileno())
        if total and done != total:
            raise ModelError(f"the connection closed after {done} of {total} bytes")
        expected = _HASH_IN_NAME.findall(dest.name)
        if expected and not digest.hexdigest().startswith(expected[-1]):
            raise ModelError(
                f"the downloaded file's sha256 {digest.hexdigest()[:16]}... does not start "
                f"with {expected[-1]} as its name says; it is damaged or not the right file"
            )
        os.replace(tmp, dest)
    except ModelError:
        tmp.unlink(missing_ok=True)
        raise
    except urllib.error.HTTPError as exc:
        tmp.unlink(missing_ok=True)
        raise ModelError(f"{url} answered HTTP {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        tmp.unlink(missing_ok=True)
        raise ModelError(f"could not reach {url} ({exc.reason})") from exc
    except (TimeoutError, OSError, http.client.HTTPException) as exc:
        tmp.unlink(missing_ok=True)
        raise ModelError(f"{type(exc).__name__} while fetching {url}: {exc}") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _report(progress: ProgressFn | None, done: int, total: int, url: str) -> None:
    if progress is not None and progress(done, total) is False:
        raise DownloadCancelled(f"Download of {url} cancelled; nothing was written.")


def _use_legacy_eps(model: torch.nn.Module) -> None:
    # torchvision sets eps=0 for the COCO_V1 weights (they come from Detectron, which had
    # none); without it the outputs would drift from torchvision's own.
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d | FrozenBatchNorm2d):
            module.eps = 0.0


# -- model files ---------------------------------------------------------------------------


def _load_file(path: Path, spec: str) -> LoadedModel:
    obj = checkpoints.load_file(path)
    if checkpoints.is_checkpoint(obj):
        assert isinstance(obj, dict)
        ckpt = checkpoints.from_dict(obj, path)
        model = _build_and_load(
            ckpt.architecture,
            ckpt.num_classes,
            ckpt.state_dict,
            path,
            how_to_fix="it may be damaged; train or save it again, or give another model file",
            min_size=ckpt.min_size,
            max_size=ckpt.max_size,
        )
        return LoadedModel(
            name=spec,
            architecture=ckpt.architecture,
            model=model,
            categories=list(ckpt.categories),
            label_to_category={i + 1: c.id for i, c in enumerate(ckpt.categories)},
        )
    state = _state_dict_of(obj, path)
    architecture = _detect_architecture(state, path)
    num_classes = _num_classes(state, path)
    model = _build_and_load(
        architecture,
        num_classes,
        state,
        path,
        how_to_fix="give a state dict of maskrcnn_resnet50_fpn or maskrcnn_resnet50_fpn_v2",
    )
    note = ""
    if num_classes == COCO_NUM_CLASSES:
        categories = coco_categories()
        if architecture == RESNET50_FPN:
            _use_legacy_eps(model)
    else:
        categories = [Category(i, f"class {i}") for i in range(1, num_classes)]
        note = (
            f"{path} holds no category names; its {num_classes - 1} classes are called "
            f"'class 1'..'class {num_classes - 1}'. A maskdesk checkpoint (maskdesk train) "
            "keeps the names."
        )
    return LoadedModel(
        name=spec,
        architecture=architecture,
        model=model,
        categories=categories,
        label_to_category={c.id: c.id for c in categories},
        note=note,
    )


def _not_a_model(path: Path, what_it_is: str, fix: str, setting: str | None) -> ModelError:
    return ModelError(
        f"{path} is not {checkpoints.MODEL_FILE} ({what_it_is}); {fix}.", setting=setting
    )


def _state_dict_of(
    obj: object,
    path: Path,
    *,
    fix: str = checkpoints.GIVE_ANOTHER,
    setting: str | None = "model",
) -> dict[str, torch.Tensor]:
    """The tensors of a plain state dict (also when wrapped as {"model": ...})."""
    if isinstance(obj, dict):
        for key in ("model", "state_dict"):
            inner = obj.get(key)
            if isinstance(inner, dict) and inner:
                obj = inner
                break
    if not isinstance(obj, dict) or not obj:
        kind = "an empty dict" if isinstance(obj, dict) else f"a {type(obj).__name__}"
        raise _not_a_model(
            path, f"it is a PyTorch file holding {kind}, not model weights", fix, setting
        )
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        if not any(isinstance(v, torch.Tensor) for v in obj.values()):
            keys = ", ".join(repr(k) for k in list(obj)[:5]) + (", ..." if len(obj) > 5 else "")
            what = f"it is a PyTorch file without model weights: a dict of {keys}"
        else:
            what = "it is a PyTorch file mixing tensors with other values, not a state dict"
        raise _not_a_model(path, what, fix, setting)
    # nn.DataParallel saves every key with a "module." prefix.
    if all(k.startswith("module.") for k in obj):
        obj = {k.removeprefix("module."): v for k, v in obj.items()}
    return obj


def _detect_architecture(state: dict[str, torch.Tensor], path: Path) -> str:
    if _V2_KEY in state:
        return RESNET50_FPN_V2
    if _V1_KEY in state:
        return RESNET50_FPN
    raise _not_a_model(
        path,
        f"it is a state dict of {len(state)} tensors, but their names match neither "
        "maskrcnn_resnet50_fpn nor maskrcnn_resnet50_fpn_v2",
        "for another architecture, train with maskdesk, whose checkpoints say what they are",
        None,
    )


def _num_classes(state: dict[str, torch.Tensor], path: Path) -> int:
    weight = state.get(_CLS_SCORE)
    if weight is None or weight.ndim != 2 or weight.shape[0] < 2:
        raise _not_a_model(
            path, f"it has no usable {_CLS_SCORE}", checkpoints.GIVE_ANOTHER, "model"
        )
    return int(weight.shape[0])


def _build_and_load(
    architecture: str,
    num_classes: int,
    state: dict[str, torch.Tensor],
    path: Path,
    *,
    how_to_fix: str,
    setting: str | None = "model",
    min_size: int | None = None,
    max_size: int | None = None,
) -> torch.nn.Module:
    model = build_architecture(architecture, num_classes, min_size=min_size, max_size=max_size)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        detail = " ".join(line.strip() for line in first[1:3]) or first[0]
        raise ModelError(
            f"{path} does not match {architecture} with {num_classes} classes ({detail[:300]}); "
            f"{how_to_fix}.",
            setting=setting,
        ) from exc
    return model.eval()
