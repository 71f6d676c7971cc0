"""Tiny dataset loaders and augmentation (no torchvision, no downloads, no pickles).

Fashion-MNIST: the IDX files (`train-images-idx3-ubyte[.gz]`, ...), e.g. from the Debian
package `dataset-fashion-mnist` at /usr/share/datasets/fashion-mnist.
CIFAR-10/100: the *binary* releases (`cifar-10-batches-bin/*.bin`, `cifar-100-binary/*.bin`),
which need no unpickling; the python-pickle releases are deliberately not read.
Any dataset: an `.npz` holding `train_images`, `train_labels`, `test_images`, `test_labels`
(uint8 images as N x H x W or N x C x H x W), read with allow_pickle=False.
"""
from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dfs_sim.errors import InputError, require


@dataclass(frozen=True)
class Spec:
    channels: int
    size: int
    classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    pad: int  # random-crop padding for training augmentation


DATASETS = {
    "fashion-mnist": Spec(1, 28, 10, (0.2860,), (0.3530,), 2),
    "cifar10": Spec(3, 32, 10, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), 4),
    "cifar100": Spec(3, 32, 100, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762), 4),
}
DEFAULT_ROOTS = {"fashion-mnist": "/usr/share/datasets/fashion-mnist"}
SPLITS = ("train", "test")


def load_split(dataset: str, root: str | Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Images as uint8 [N, C, H, W] and labels as int64 [N]."""
    require(dataset in DATASETS, "--dataset", None, f"unknown dataset '{dataset}' ({', '.join(DATASETS)})")
    require(split in SPLITS, "--split", None, f"unknown split '{split}' ({', '.join(SPLITS)})")
    root = Path(root)
    spec = DATASETS[dataset]
    if root.suffix == ".npz":
        images, labels = _read_npz(root, split)
    elif dataset == "fashion-mnist":
        images, labels = _read_idx_pair(root, "train" if split == "train" else "t10k")
    else:
        images, labels = _read_cifar_bin(root, dataset, split)
    if images.ndim == 3:
        images = images[:, None]
    require(images.shape[1:] == (spec.channels, spec.size, spec.size), root, None,
            f"{dataset} images must be {spec.channels}x{spec.size}x{spec.size}, got {images.shape[1:]}")
    require(len(labels) == len(images), root, None, "image and label counts differ")
    require(len(labels) == 0 or 0 <= labels.min() and labels.max() < spec.classes, root, None,
            f"labels must lie in [0, {spec.classes})")
    return torch.from_numpy(np.array(images, dtype=np.uint8)), torch.from_numpy(labels.astype(np.int64))


def _read_npz(path: Path, split: str):
    require(path.is_file(), path, None, "no such dataset file")
    with np.load(path, allow_pickle=False) as data:
        for key in (f"{split}_images", f"{split}_labels"):
            require(key in data.files, path, key, "missing from dataset archive")
        return data[f"{split}_images"], data[f"{split}_labels"]


def _open_maybe_gz(root: Path, name: str):
    for candidate in (root / name, root / f"{name}.gz"):
        if candidate.is_file():
            return gzip.open(candidate) if candidate.suffix == ".gz" else open(candidate, "rb")
    raise InputError(root, None, f"no Fashion-MNIST file {name}[.gz] here (pass --data DIR with the IDX files; "
                                 "nothing is downloaded)")


def _read_idx(root: Path, name: str) -> np.ndarray:
    with _open_maybe_gz(root, name) as handle:
        raw = handle.read()
    require(len(raw) >= 4 and raw[:2] == b"\0\0" and raw[2] == 8, root / name, None, "not an IDX uint8 file")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    require(data.size == int(np.prod(dims)), root / name, None, "IDX file is truncated")
    return data.reshape(dims)


def _read_idx_pair(root: Path, prefix: str):
    return _read_idx(root, f"{prefix}-images-idx3-ubyte"), _read_idx(root, f"{prefix}-labels-idx1-ubyte")


def _read_cifar_bin(root: Path, dataset: str, split: str):
    folder, label_bytes = ("cifar-10-batches-bin", 1) if dataset == "cifar10" else ("cifar-100-binary", 2)
    directory = root / folder if (root / folder).is_dir() else root
    if dataset == "cifar10":
        names = [f"data_batch_{i}.bin" for i in range(1, 6)] if split == "train" else ["test_batch.bin"]
    else:
        names = [f"{split}.bin"]
    missing = [n for n in names if not (directory / n).is_file()]
    require(not missing, directory, None, f"no {missing[0] if missing else ''} here: {dataset} needs the binary "
            f"release ({folder}/); the python-pickle release is not read, and nothing is downloaded")
    record = label_bytes + 3 * 32 * 32
    raw = np.concatenate([np.fromfile(directory / n, dtype=np.uint8) for n in names])
    require(raw.size % record == 0, directory, None, "binary batch size is not a whole number of records")
    raw = raw.reshape(-1, record)
    return raw[:, label_bytes:].reshape(-1, 3, 32, 32), raw[:, label_bytes - 1]  # CIFAR-100: fine label


class Batches:
    """Shuffled, augmented (random crop + horizontal flip) batches for training, or plain
    ordered batches for evaluation. Each epoch's order and augmentation come from a generator
    seeded with (seed, epoch), so a resumed run sees exactly the batches it would have seen."""

    def __init__(self, images, labels, spec: Spec, batch_size: int, *, train: bool, seed: int = 0,
                 device="cpu", channels_last: bool = False):
        self.images, self.labels, self.spec = images, labels, spec
        self.batch_size, self.train, self.seed = batch_size, train, seed
        self.device, self.channels_last = torch.device(device), channels_last
        self.mean = torch.tensor(spec.mean, device=self.device).view(1, -1, 1, 1)
        self.std = torch.tensor(spec.std, device=self.device).view(1, -1, 1, 1)

    def __len__(self) -> int:
        return -(-len(self.labels) // self.batch_size)

    def epoch(self, epoch: int = 0):
        n = len(self.labels)
        generator = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        order = torch.randperm(n, generator=generator) if self.train else torch.arange(n)
        for start in range(0, n, self.batch_size):
            index = order[start:start + self.batch_size]
            x = self.images[index]
            if self.train:
                x = self._augment(x, generator)
            x = (x.to(self.device).float() / 255 - self.mean) / self.std
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, self.labels[index].to(self.device)

    def _augment(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        b, c, h, w = x.shape
        p = self.spec.pad
        padded = torch.nn.functional.pad(x, (p, p, p, p))
        dy, dx = (torch.randint(0, 2 * p + 1, (2, b), generator=generator))
        rows = (dy[:, None] + torch.arange(h))[:, None, :, None]
        cols = (dx[:, None] + torch.arange(w))[:, None, None, :]
        x = padded[torch.arange(b)[:, None, None, None], torch.arange(c)[None, :, None, None], rows, cols]
        flip = torch.rand(b, generator=generator) < 0.5
        return torch.where(flip[:, None, None, None], x.flip(-1), x)
