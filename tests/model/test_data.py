import gzip

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dfs_sim.errors import InputError  # noqa: E402
from dfs_sim.model.data import DATASETS, Batches, load_split  # noqa: E402


def write_cifar(directory, names, label_bytes, n, rng):
    directory.mkdir(parents=True)
    images, labels = [], []
    for name in names:
        image = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
        label = rng.integers(0, 10, (n, label_bytes), dtype=np.uint8)
        np.concatenate([label, image.reshape(n, -1)], axis=1).tofile(directory / name)
        images.append(image)
        labels.append(label[:, -1])
    return np.concatenate(images), np.concatenate(labels)


def test_cifar10_binary_batches(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "data"
    names = [f"data_batch_{i}.bin" for i in range(1, 6)]
    images, labels = write_cifar(root / "cifar-10-batches-bin", names, 1, 3, rng)
    x, y = load_split("cifar10", root, "train")
    assert x.shape == (15, 3, 32, 32) and x.dtype == torch.uint8
    assert np.array_equal(x.numpy(), images) and np.array_equal(y.numpy(), labels)
    with pytest.raises(InputError, match="test_batch.bin"):
        load_split("cifar10", root, "test")


def test_cifar100_reads_the_fine_label(tmp_path):
    rng = np.random.default_rng(1)
    images, fine = write_cifar(tmp_path / "cifar-100-binary", ["test.bin"], 2, 4, rng)
    x, y = load_split("cifar100", tmp_path / "cifar-100-binary", "test")
    assert np.array_equal(x.numpy(), images) and np.array_equal(y.numpy(), fine)


def test_idx_files_plain_or_gzipped(tmp_path):
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    labels = np.array([0, 3, 9, 1, 2], dtype=np.uint8)
    header = b"\0\0\x08\x03" + b"".join(d.to_bytes(4, "big") for d in images.shape)
    with gzip.open(tmp_path / "t10k-images-idx3-ubyte.gz", "wb") as handle:
        handle.write(header + images.tobytes())
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(b"\0\0\x08\x01" + (5).to_bytes(4, "big") + labels.tobytes())
    x, y = load_split("fashion-mnist", tmp_path, "test")
    assert x.shape == (5, 1, 28, 28) and np.array_equal(x[:, 0].numpy(), images)
    assert np.array_equal(y.numpy(), labels)
    with pytest.raises(InputError, match="train-images-idx3-ubyte"):
        load_split("fashion-mnist", tmp_path, "train")


def test_batches_are_seeded_per_epoch_and_augmentation_keeps_shapes():
    images = torch.randint(0, 256, (50, 1, 28, 28), dtype=torch.uint8)
    labels = torch.randint(0, 10, (50,))
    spec = DATASETS["fashion-mnist"]
    first = list(Batches(images, labels, spec, 16, train=True, seed=3).epoch(2))
    again = list(Batches(images, labels, spec, 16, train=True, seed=3).epoch(2))
    other = list(Batches(images, labels, spec, 16, train=True, seed=3).epoch(3))
    assert [x.shape for x, _ in first] == [(16, 1, 28, 28)] * 3 + [(2, 1, 28, 28)]
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(first, again))
    assert not torch.equal(first[0][0], other[0][0])
    plain = torch.cat([x for x, _ in Batches(images, labels, spec, 16, train=False).epoch()])
    expected = (images.float() / 255 - spec.mean[0]) / spec.std[0]
    assert torch.allclose(plain, expected)
