"""`maskdesk predict` over loose images and list files with the local engine (issue 15): the
parts a run leaves, a killed run continued from them, array-job shards joined with `merge`,
and `--engine ray` without Ray saying how to install it."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from maskdesk.cli import main
from maskdesk.datasets.shapes import generate

FIXTURE_MODEL = Path(__file__).resolve().parents[1] / "fixtures" / "shapes-tiny.pt"
N = 9


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("parts") / "pictures"
    folder.mkdir()
    for i in range(N):
        Image.fromarray(generate(31, i).image).save(folder / f"p{i}.png")
    return folder


def _predict(*sources: Path, out: Path, extra: tuple[str, ...] = ()) -> int:
    args = ["predict", *map(str, sources), "-o", str(out), "--model", str(FIXTURE_MODEL)]
    return main([*args, "--threads", "1", "--score", "0.3", *extra])


def _content(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text())
    data["info"].pop("date_created", None)
    return data


@pytest.fixture(scope="module")
def whole(images: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("whole") / "whole.json"
    assert _predict(images, out=out, extra=("--no-store",)) == 0
    return _content(out)


def test_a_list_file_names_images_relative_to_itself(
    images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    listing = images.parent / "todo.txt"
    lines = ["# the first batch", *(f"pictures/p{i}.png" for i in (2, 0)), "", "pictures/gone.png"]
    listing.write_text("\n".join(lines) + "\n")
    out = tmp_path / "listed.json"
    assert _predict(listing, out=out) == 1  # the missing file failed, the rest did not
    data = _content(out)
    # Named relative to the folder the images share, ids in natural path order.
    assert [i["file_name"] for i in data["images"]] == ["p0.png", "p2.png"]
    assert len(data["annotations"]) >= 2
    err = capsys.readouterr().err
    assert "gone.png" in err and "p2.png" not in err.split("failed:")[-1]


def test_a_killed_run_continues_from_its_parts(
    images: Path, whole: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run.json"
    assert _predict(images, out=out, extra=("--no-store", "--keep-parts")) == 0
    (part,) = (tmp_path / "run.json.parts").glob("*.jsonl")
    lines = part.read_bytes().splitlines(keepends=True)
    assert len(lines) == 1 + N  # the header, one record per image
    # As a kill leaves it: four images written, the fifth cut off mid-line, no JSON yet.
    part.write_bytes(b"".join(lines[:5]) + lines[5][:40])
    out.unlink()
    capsys.readouterr()
    assert _predict(images, out=out, extra=("--no-store",)) == 0
    err = capsys.readouterr().err
    assert f"4 images already in {tmp_path / 'run.json.parts'}: skipped" in err
    assert f"{N - 4} images predicted" in err
    assert _content(out) == whole
    assert not (tmp_path / "run.json.parts").exists()  # merged into run.json, then removed


def test_shards_of_an_array_job_merge_into_the_file_of_one_run(
    images: Path, whole: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sharded.json"
    for index in range(3):
        assert _predict(images, out=out, extra=("--shard", f"{index}/3")) == 0
    assert not out.exists()  # shards write parts only
    parts = tmp_path / "sharded.json.parts"
    names = sorted(p.name for p in parts.iterdir())
    assert names == ["shard-0-of-3.jsonl", "shard-1-of-3.jsonl", "shard-2-of-3.jsonl"]
    sizes = [len((parts / n).read_bytes().splitlines()) - 1 for n in names]
    assert sizes == [3, 3, 3]  # every image in exactly one shard
    assert f"maskdesk merge {parts} -o {out}" in capsys.readouterr().err
    # Shards never write the folder's project: many array tasks would write one database.
    assert not (images / ".maskdesk").exists()
    assert main(["merge", str(parts), "-o", str(out), "--score", "0.3"]) == 0
    assert _content(out) == whole


def test_a_shard_that_is_not_i_of_n_is_a_usage_error(
    images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        _predict(images, out=tmp_path / "o.json", extra=("--shard", "3/3"))
    assert exit_info.value.code == 2
    assert "I must be 0..N-1" in capsys.readouterr().err


def test_parts_of_another_model_are_not_mixed_in(
    images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "mixed.json"
    parts = tmp_path / "mixed.json.parts"
    parts.mkdir()
    header = {"maskdesk_parts": 1, "model": "coco-v1", "categories": [], "root": str(images)}
    (parts / "part-elsewhere-1.jsonl").write_text(json.dumps(header) + "\n")
    assert _predict(images, out=out, extra=("--no-store",)) == 2
    err = capsys.readouterr().err
    assert "holds the unfinished run of another model (coco-v1)" in err and "--redo" in err
    assert _predict(images, out=out, extra=("--no-store", "--redo")) == 0
    assert len(_content(out)["images"]) == N


def test_engine_ray_without_ray_says_how_to_install_it(
    images: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    out = tmp_path / "ray.json"
    assert _predict(images, out=out, extra=("--engine", "ray")) == 2
    err = capsys.readouterr().err
    assert "pip install 'maskdesk[ray]'" in err
    assert "Traceback" not in err
    assert not out.exists()
