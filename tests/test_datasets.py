"""Training patches and validation images: purity, sharding, pairing, caching, errors."""

from __future__ import annotations

import logging
from itertools import permutations
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from srflow.data.datasets import (
    DatasetError,
    ImageCollection,
    StepSampler,
    TrainPatches,
    ValidationImages,
)
from srflow.data.transforms import bicubic_downscale, center_crop, dihedral

skimage_data = pytest.importorskip("skimage.data")


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real photos in nested folders and mixed formats."""
    root = tmp_path_factory.mktemp("hr")
    (root / "sub").mkdir()
    Image.fromarray(skimage_data.astronaut()).save(root / "astronaut.png")
    Image.fromarray(skimage_data.chelsea()).save(root / "sub" / "chelsea.jpg", quality=95)
    Image.fromarray(skimage_data.coffee()).save(root / "sub" / "coffee.webp", lossless=True)
    (root / "notes.txt").write_text("not an image")
    return root


def patches(folder: Path, cache: int = 64, **kw: object) -> TrainPatches:
    images = ImageCollection(folder, scale=4, min_size=48, cache_max_mb=cache)
    return TrainPatches(images, patch_size=48, seed=3, **kw)  # type: ignore[arg-type]


def test_finds_images_recursively_and_caches(folder: Path) -> None:
    images = ImageCollection(folder, scale=4, cache_max_mb=64)
    assert [p.name for p in images.hr_paths] == ["astronaut.png", "chelsea.jpg", "coffee.webp"]
    assert images.cached
    hr, lr = images.get(1)
    assert hr.dtype == np.uint8 and hr.shape == (300, 448, 3) and lr is None  # modcropped
    assert not ImageCollection(folder, scale=4, cache_max_mb=0).cached


def test_samples_are_a_pure_function_of_the_key(folder: Path) -> None:
    cached, uncached = patches(folder), patches(folder, cache=0)
    a, b = cached[(0, 17)], uncached[(0, 17)]
    assert torch.equal(a["hr"], b["hr"]) and torch.equal(a["lr"], b["lr"])
    assert a["noise_seed"] == b["noise_seed"]
    c = cached[(0, 18)]
    assert not torch.equal(a["hr"], c["hr"]) and a["noise_seed"] != c["noise_seed"]
    assert not torch.equal(a["hr"], cached[(1, 17)]["hr"])  # another stream (after a rollback)
    assert a["hr"].shape == (3, 48, 48) and a["lr"].shape == (3, 12, 12)


def test_each_epoch_visits_every_image_once(folder: Path) -> None:
    data = patches(folder)
    for epoch in range(3):
        order = data.image_order(0, epoch)
        assert sorted(order.tolist()) == [0, 1, 2]


def test_lr_is_the_matlab_bicubic_of_the_uint8_hr_patch(folder: Path) -> None:
    data = patches(folder, flips=False, rotations=False)
    item = data[(0, 5)]
    hr = item["hr"].permute(1, 2, 0).numpy()
    assert np.array_equal(item["lr"].permute(1, 2, 0).numpy(), bicubic_downscale(hr, 4))


def test_augmentation_is_the_same_dihedral_on_hr_and_lr(folder: Path) -> None:
    plain = patches(folder, flips=False, rotations=False)
    augmented = patches(folder)
    seen = set()
    for index in range(24):
        a, b = plain[(0, index)], augmented[(0, index)]
        hr, hr_aug = a["hr"].permute(1, 2, 0).numpy(), b["hr"].permute(1, 2, 0).numpy()
        lr, lr_aug = a["lr"].permute(1, 2, 0).numpy(), b["lr"].permute(1, 2, 0).numpy()
        matches = [(k, f) for k in range(4) for f in (False, True)
                   if np.array_equal(dihedral(hr, k, f), hr_aug)]  # fmt: skip
        assert matches, index
        k, f = matches[0]
        assert np.array_equal(dihedral(lr, k, f), lr_aug)
        seen.add((k, f))
    assert len(seen) >= 5  # rotations and flips both happen


def test_channel_shuffle_permutes_hr_and_lr_alike_and_keeps_other_draws(folder: Path) -> None:
    plain, shuffled = patches(folder), patches(folder, channel_shuffle=True)
    orders = set()
    for index in range(24):
        a, b = plain[(0, index)], shuffled[(0, index)]
        assert a["noise_seed"] == b["noise_seed"]  # the option does not shift other draws
        found = [o for o in permutations(range(3)) if torch.equal(a["hr"][list(o)], b["hr"])]
        assert found, index
        assert any(torch.equal(a["lr"][list(o)], b["lr"]) for o in found)
        orders.add(found[0])
    assert len(orders) >= 4


def test_paired_lr_folder_is_aligned(folder: Path, tmp_path: Path) -> None:
    lr_root = tmp_path / "lr"
    (lr_root / "sub").mkdir(parents=True)
    images = ImageCollection(folder, scale=4, cache_max_mb=64)
    for path in images.hr_paths:
        hr = images.get(images.hr_paths.index(path))[0]
        rel = path.relative_to(folder).with_suffix(".png")
        Image.fromarray(np.ascontiguousarray(hr[::4, ::4])).save(lr_root / rel)  # nearest
    paired = ImageCollection(folder, lr_root, scale=4, cache_max_mb=64)
    data = TrainPatches(paired, patch_size=48, seed=0, flips=False, rotations=False)
    for index in range(6):
        item = data[(0, index)]
        assert torch.equal(item["lr"], item["hr"][:, ::4, ::4])


def test_paired_lr_errors_name_the_file(folder: Path, tmp_path: Path) -> None:
    lr_root = tmp_path / "lr"
    lr_root.mkdir()
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(lr_root / "astronaut.png")
    with pytest.raises(DatasetError, match="chelsea.jpg: no paired LR image 'sub/chelsea"):
        ImageCollection(folder, lr_root, scale=4)
    only = tmp_path / "only"
    only.mkdir()
    Image.fromarray(skimage_data.astronaut()).save(only / "astronaut.png")
    with pytest.raises(DatasetError, match=r"astronaut.png: LR is 10x10, expected 128x128"):
        ImageCollection(only, lr_root, scale=4, cache_max_mb=64)


def test_small_images_are_skipped_and_empty_folders_rejected(
    folder: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        images = ImageCollection(folder, scale=4, min_size=400)
    assert [p.name for p in images.hr_paths] == ["astronaut.png", "coffee.webp"]
    assert "chelsea.jpg: 300x451 is smaller than 400 px, skipped" in caplog.text
    with pytest.raises(DatasetError, match="no usable images"):
        ImageCollection(tmp_path, scale=4)
    with pytest.raises(DatasetError, match="no such image folder"):
        ImageCollection(tmp_path / "missing", scale=4)


def test_rank_shards_partition_each_global_batch() -> None:
    single = list(StepSampler(3, 6, 8))
    shards = [list(StepSampler(3, 6, 8, rank=r, world_size=4)) for r in range(4)]
    for step in range(3):
        batch = single[step * 8 : (step + 1) * 8]
        union = [k for shard in shards for k in shard[step * 2 : (step + 1) * 2]]
        assert union == batch == [(0, (3 + step) * 8 + i) for i in range(8)]
    with pytest.raises(ValueError, match="not divisible"):
        StepSampler(0, 1, 6, world_size=4)


def test_worker_processes_give_the_same_batches(folder: Path) -> None:
    data = patches(folder)

    def batches(workers: int) -> list[dict]:
        sampler = StepSampler(2, 5, 4, stream=0)
        loader = DataLoader(data, batch_size=4, sampler=sampler, num_workers=workers)
        return list(loader)

    for a, b in zip(batches(0), batches(2), strict=True):
        assert torch.equal(a["hr"], b["hr"]) and torch.equal(a["noise_seed"], b["noise_seed"])


def test_validation_images_are_centre_cropped(folder: Path) -> None:
    val = ValidationImages(folder, scale=4, multiple=2, crop=64, max_images=2)
    assert val.names == ["astronaut", "chelsea"] and len(val) == 2
    assert all(hr.shape == (64, 64, 3) and lr.shape == (16, 16, 3)
               for hr, lr in zip(val.hr, val.lr, strict=True))  # fmt: skip
    full = skimage_data.astronaut()
    assert np.array_equal(val.hr[0], center_crop(full, 64, 8))
    whole = ValidationImages(folder, scale=4, multiple=2, crop=0, max_images=3)
    assert whole.hr[1].shape == (296, 448, 3)  # chelsea 300x451 modcropped to 8


def _folder_with_bad_files(root: Path) -> Path:
    Image.fromarray(skimage_data.astronaut()).save(root / "good.png")
    (root / "empty.png").write_bytes(b"")
    (root / "text.jpg").write_text("not an image at all")
    whole = (root / "good.png").read_bytes()
    (root / "truncated.png").write_bytes(whole[: len(whole) // 2])
    return root


def test_bad_training_files_are_all_named_at_once(tmp_path: Path) -> None:
    root = _folder_with_bad_files(tmp_path)
    with pytest.raises(DatasetError) as caught:
        ImageCollection(root, scale=4, min_size=48)
    message = str(caught.value)
    assert message.startswith(f"{root}: 3 of 4 image files cannot be read: ")
    for name in ("empty.png (empty file)", "text.jpg", "truncated.png"):
        assert name in message
    assert "good.png" not in message and "data.skip_bad_images=true" in message
    assert "\n" not in message


def test_bad_training_files_can_be_skipped_explicitly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = _folder_with_bad_files(tmp_path)
    with caplog.at_level(logging.WARNING):
        images = ImageCollection(root, scale=4, min_size=48, skip_bad=True, cache_max_mb=64)
    assert [p.name for p in images.hr_paths] == ["good.png"] and images.cached
    for name in ("empty.png", "text.jpg", "truncated.png"):
        assert f"skipped, cannot be read: {name}" in caplog.text
    assert "3 unreadable image files skipped" in caplog.text


def test_train_command_names_every_bad_file(tmp_path: Path, capsys) -> None:
    pytest.importorskip("srflow.cli.train")
    from srflow.cli.main import main

    (tmp_path / "hr").mkdir()
    root = _folder_with_bad_files(tmp_path / "hr")
    run = tmp_path / "run"
    args = ["train", "train_tiny", "--out", str(run), "--set", f"data.train_hr={root}",
            "--no-progress"]  # fmt: skip
    assert main(args) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: ") and "3 of 4 image files cannot be read" in line
