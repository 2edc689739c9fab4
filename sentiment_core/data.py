"""IMDB reviews from tfds, jsonl.gz files, an aclImdb folder or archive, or the bundled sample.

One `--data` string picks the source. Nothing falls back silently: a source that
cannot be read raises `DataError` saying why and what else to use.
"""

from __future__ import annotations

import gzip
import json
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SAMPLE_DIR = Path(__file__).parent / "sample"
ALTERNATIVES = ("--data sample (bundled, offline), --data DIR with train.jsonl.gz/test.jsonl.gz, "
                "--data path/to/aclImdb or --data path/to/aclImdb_v1.tar.gz")
_ACL_MEMBER = re.compile(r"(?:^|/)aclImdb/(train|test)/(pos|neg)/\d+_\d+\.txt$")


class DataError(RuntimeError):
    """The data source could not be read; the message says what to try instead."""


@dataclass(frozen=True)
class Split:
    texts: list[str]
    labels: np.ndarray  # int32, 1 = positive

    def __len__(self) -> int:
        return len(self.texts)


@dataclass(frozen=True)
class Dataset:
    train: Split
    validation: Split
    test: Split
    source: str


def describe_source(data: str) -> str:
    """A stable fingerprint of the source, for the preprocessing cache."""
    if data in ("tfds", "sample"):
        return data if data == "tfds" else f"sample:{_stamp(SAMPLE_DIR)}"
    return f"{Path(data).resolve()}:{_stamp(Path(data))}"


def same_source(a: str, b: str) -> bool:
    """Two --data values naming the same source (a folder may be written relative or absolute)."""
    return a == b or (Path(a).exists() and Path(b).exists() and Path(a).resolve() == Path(b).resolve())


def _stamp(path: Path) -> str:
    files = [path] if path.is_file() else sorted(p for p in path.glob("*.jsonl.gz"))
    return ",".join(f"{p.name}:{p.stat().st_size}:{int(p.stat().st_mtime)}" for p in files)


def load_raw(data: str, tfds_dir: str | None = None) -> tuple[Split, Split]:
    """The official train and test halves of a source."""
    if data == "tfds":
        return _from_tfds(tfds_dir)
    if data == "sample":
        return _read_jsonl(SAMPLE_DIR / "sample_train.jsonl.gz"), _read_jsonl(SAMPLE_DIR / "sample_test.jsonl.gz")
    path = Path(data)
    if not path.exists():
        raise DataError(f"data source {data!r} does not exist. Use --data tfds or {ALTERNATIVES}")
    if path.is_file() and path.name.endswith((".tar.gz", ".tgz", ".tar")):
        return _from_archive(path)
    if (path / "train.jsonl.gz").exists():
        return _from_jsonl_dir(path)
    if (path / "train" / "pos").is_dir() or (path / "aclImdb" / "train" / "pos").is_dir():
        return _from_acl_dir(path if (path / "train").is_dir() else path / "aclImdb")
    raise DataError(f"{data!r} is neither a folder with train.jsonl.gz/test.jsonl.gz, an aclImdb "
                    f"folder nor an aclImdb_v1.tar.gz archive. Use --data tfds or {ALTERNATIVES}")


def _read_jsonl(path: Path) -> Split:
    if not path.exists():
        raise DataError(f"missing {path}; a data folder needs train.jsonl.gz and test.jsonl.gz. Or use {ALTERNATIVES}")
    texts, labels = [], []
    try:
        with gzip.open(path, "rt", encoding="utf-8") as lines:
            for line in lines:
                row = json.loads(line)
                texts.append(str(row["text"]))
                labels.append(int(row["label"]))
    except (OSError, EOFError, ValueError, KeyError, TypeError) as error:
        raise DataError(f"{path} is not gzip JSON lines with 'text' and 'label' ({error}). "
                        f"Use {ALTERNATIVES}") from error
    return Split(texts, np.asarray(labels, dtype=np.int32))


def _from_jsonl_dir(folder: Path) -> tuple[Split, Split]:
    return _read_jsonl(folder / "train.jsonl.gz"), _read_jsonl(folder / "test.jsonl.gz")


def _sorted_split(rows: list[tuple[str, str, str]]) -> Split:
    rows.sort()  # by (name, ...) so the order does not depend on the file system
    return Split([text for _, _, text in rows], np.asarray([label == "pos" for _, label, _ in rows], np.int32))


def _from_acl_dir(root: Path) -> tuple[Split, Split]:
    halves = []
    for half in ("train", "test"):
        rows = [(f"{label}/{p.name}", label, p.read_text(encoding="utf-8", errors="replace"))
                for label in ("pos", "neg") for p in (root / half / label).glob("*.txt")]
        if not rows:
            raise DataError(f"{root / half} holds no pos/*.txt or neg/*.txt reviews. Use {ALTERNATIVES}")
        halves.append(_sorted_split(rows))
    return halves[0], halves[1]


def _from_archive(path: Path) -> tuple[Split, Split]:
    rows: dict[str, list[tuple[str, str, str]]] = {"train": [], "test": []}
    try:
        with tarfile.open(path) as archive:
            for member in archive:
                match = _ACL_MEMBER.search(member.name)
                if match and member.isfile():
                    half, label = match.groups()
                    raw = archive.extractfile(member).read()  # type: ignore[union-attr]
                    rows[half].append((f"{label}/{member.name}", label, raw.decode("utf-8", "replace")))
    except (tarfile.TarError, OSError, EOFError) as error:
        raise DataError(f"{path} is not a readable aclImdb archive ({error}). Use {ALTERNATIVES}") from error
    if not rows["train"] or not rows["test"]:
        raise DataError(f"{path} holds no aclImdb/train and aclImdb/test reviews. Use {ALTERNATIVES}")
    return _sorted_split(rows["train"]), _sorted_split(rows["test"])


def _from_tfds(data_dir: str | None) -> tuple[Split, Split]:
    try:
        import tensorflow_datasets as tfds
    except ImportError as error:
        raise DataError(f"--data tfds needs tensorflow-datasets ({error}). Or use {ALTERNATIVES}") from error
    try:
        train, test = tfds.load("imdb_reviews", split=["train", "test"], as_supervised=True,
                                batch_size=-1, data_dir=data_dir)
    except Exception as error:  # tfds raises many kinds on a failed download
        raise DataError(
            "tensorflow-datasets could not load imdb_reviews (it downloads aclImdb_v1.tar.gz, 84 MB, "
            f"on first use; is there internet?): {type(error).__name__}: {str(error)[:300]}. "
            f"Without internet, use {ALTERNATIVES}, or put aclImdb_v1.tar.gz in "
            "<tfds data_dir>/downloads/manual/.") from error
    halves = []
    for texts, labels in (tfds.as_numpy(train), tfds.as_numpy(test)):
        halves.append(Split([t.decode("utf-8", "replace") for t in texts], np.asarray(labels, np.int32)))
    return halves[0], halves[1]


def _take(split: Split, order: np.ndarray) -> Split:
    return Split([split.texts[i] for i in order], split.labels[order])


def _concat(a: Split, b: Split) -> Split:
    return Split(a.texts + b.texts, np.concatenate([a.labels, b.labels]))


def make_splits(train: Split, test: Split, split: str = "official", validation_fraction: float = 0.2,
                seed: int = 42, source: str = "") -> Dataset:
    """Hold out validation from the training half; the test half never trains or selects anything.

    `official`: the 25k/25k halves as published. `notebook`: the seed notebook's
    protocol, all 50k merged, 80/20 train/test with a fixed seed.
    """
    rng = np.random.default_rng(seed)
    if split == "notebook":
        merged = _concat(train, test)
        order = rng.permutation(len(merged))
        n_test = len(merged) // 5
        train, test = _take(merged, order[n_test:]), _take(merged, order[:n_test])
    elif split != "official":
        raise DataError(f"split must be 'official' or 'notebook', got {split!r}")
    order = rng.permutation(len(train))
    n_val = max(1, int(round(len(train) * validation_fraction)))
    return Dataset(_take(train, order[n_val:]), _take(train, order[:n_val]), test, source)


def load(data: str = "tfds", split: str = "official", validation_fraction: float = 0.2, seed: int = 42,
         tfds_dir: str | None = None) -> Dataset:
    train, test = load_raw(data, tfds_dir)
    return make_splits(train, test, split, validation_fraction, seed, source=data)


def test_ratings(data: str) -> np.ndarray | None:
    """The star rating (1-4 negative, 7-10 positive) of each test review, in load_raw's order, where the
    source keeps it: the bundled sample and jsonl folders have a `rating` field; other sources give None."""
    if data == "sample":
        path = SAMPLE_DIR / "sample_test.jsonl.gz"
    elif (Path(data) / "test.jsonl.gz").is_file():
        path = Path(data) / "test.jsonl.gz"
    else:
        return None
    try:
        with gzip.open(path, "rt", encoding="utf-8") as lines:
            ratings = [json.loads(line).get("rating") for line in lines]
    except (OSError, EOFError, ValueError) as error:
        raise DataError(f"{path} is not gzip JSON lines ({error}). Use {ALTERNATIVES}") from error
    if any(not isinstance(r, int) for r in ratings):
        return None
    return np.asarray(ratings, dtype=np.int32)
