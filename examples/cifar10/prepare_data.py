"""Prepare CIFAR-10 for the example: the layout train.py reads, ready for `trainstack upload`.

    python prepare_data.py ./cifar10                      # download (163 MiB) and extract
    python prepare_data.py ./cifar10 --from-tarball F     # an archive you already have (offline)
    python prepare_data.py ./cifar10 --sample 200         # a tiny generated set: tries the pipeline, trains nothing
    trainstack upload ./cifar10 raw/cifar10/v1/           # then: the dataset every example stack names

Writes OUT/cifar-10-batches-py/ with data_batch_1..5, test_batch and batches.meta: CIFAR-10's "python
version" batches (pickled dicts, b"data": 3072 bytes per 32x32 RGB image, b"labels": 0-9), which
train.py finds anywhere under the run's dataset. The archive is checked against its published MD5
(https://www.cs.toronto.edu/~kriz/cifar.html, the same value torchvision checks). Standard library only.
"""

from __future__ import annotations

import argparse
import hashlib
import pickle
import random
import shutil
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
MD5 = "c58f30108f718f92721af3b95e74349a"
FOLDER = "cifar-10-batches-py"
BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)
FILES = BATCHES + ("batches.meta",)
LABELS = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
IMAGE_BYTES = 32 * 32 * 3


class PrepareError(Exception):
    pass


def md5sum(path: Path) -> str:
    h = hashlib.md5()  # noqa: S324 - the published checksum is an MD5; integrity, not security
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def extract(tarball: Path, out: Path, md5: str = MD5) -> Path:
    """The batches of a CIFAR-10 python archive into OUT/cifar-10-batches-py/ (only those files, by name)."""
    got = md5sum(tarball)
    if got != md5:
        raise PrepareError(
            f"{tarball}: MD5 {got}, expected {md5} (cifar-10-python.tar.gz). Fix: download it again from {URL}"
        )
    dest = out / FOLDER
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tarball, "r:gz") as tar:
        members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile() and Path(m.name).name in FILES}
        missing = sorted(set(FILES) - set(members))
        if missing:
            raise PrepareError(f"{tarball}: no {', '.join(missing)} inside. Fix: use cifar-10-python.tar.gz from {URL}")
        for name, member in members.items():
            src = tar.extractfile(member)
            assert src is not None
            with src, (dest / name).open("wb") as f:  # written by name: no path from the archive is trusted
                shutil.copyfileobj(src, f)
    return dest


def sample(out: Path, per_batch: int, seed: int = 0) -> Path:
    """A generated set in the same format (random pixels, labels 0-9): for trying the pipeline only."""
    if per_batch < 1:
        raise PrepareError(f"--sample {per_batch}: must be at least 1 image per batch")
    rng = random.Random(seed)
    dest = out / FOLDER
    dest.mkdir(parents=True, exist_ok=True)
    for name in BATCHES:
        batch = {
            b"batch_label": f"trainstack generated sample ({name})".encode(),
            b"labels": [rng.randrange(10) for _ in range(per_batch)],
            b"data": rng.randbytes(per_batch * IMAGE_BYTES),
            b"filenames": [f"sample_{i}.png".encode() for i in range(per_batch)],
        }
        with (dest / name).open("wb") as f:
            pickle.dump(batch, f, protocol=2)
    with (dest / "batches.meta").open("wb") as f:
        pickle.dump({b"label_names": [n.encode() for n in LABELS], b"num_vis": IMAGE_BYTES}, f, protocol=2)
    return dest


def download(to: Path) -> Path:
    target = to / "cifar-10-python.tar.gz"
    print(f"downloading {URL} ...", file=sys.stderr)
    try:
        with urllib.request.urlopen(URL, timeout=60) as r, target.open("wb") as f:  # noqa: S310 - a fixed https URL
            shutil.copyfileobj(r, f)
    except OSError as exc:
        raise PrepareError(
            f"download of {URL} failed ({exc}). Fix: download it elsewhere and pass --from-tarball FILE, or use "
            "--sample N to try the pipeline"
        ) from None
    return target


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path, help="folder to write (then: trainstack upload OUT raw/cifar10/v1/)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--from-tarball", type=Path, help="a downloaded cifar-10-python.tar.gz")
    src.add_argument("--sample", type=int, metavar="N", help="generate N images per batch instead (trains nothing)")
    a = p.parse_args(argv)
    try:
        if a.sample is not None:
            dest = sample(a.out, a.sample)
            print(f"wrote a generated sample ({a.sample} images per batch; not CIFAR-10) to {dest}")
        elif a.from_tarball is not None:
            dest = extract(a.from_tarball, a.out)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                dest = extract(download(Path(tmp)), a.out)
    except PrepareError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{dest}: {', '.join(FILES)}\nnext: trainstack upload {a.out} raw/cifar10/v1/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
