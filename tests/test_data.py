"""Data sources and splits: each `--data` kind loads, validation never overlaps, failures say what to try."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest

from sentiment_core import data
from sentiment_core.data import DataError

REVIEWS = {  # (half, label, file name) -> text
    ("train", "pos", "0_9.txt"): "A wonderful, moving film.",
    ("train", "pos", "1_8.txt"): "Loved it<br />truly.",
    ("train", "neg", "0_2.txt"): "Dull and far too long.",
    ("train", "neg", "1_1.txt"): "Awful acting.",
    ("test", "pos", "0_10.txt"): "Brilliant.",
    ("test", "neg", "0_3.txt"): "Boring.",
    ("test", "neg", "1_4.txt"): "Not good.",
}


def labelled(split: data.Split) -> dict[str, int]:
    return dict(zip(split.texts, split.labels.tolist(), strict=True))


def expected(half: str) -> dict[str, int]:
    return {text: int(label == "pos") for (h, label, _), text in REVIEWS.items() if h == half}


def test_sample_is_2000_and_1000_balanced(sample_halves):
    train, test = sample_halves
    assert (len(train), len(test)) == (2000, 1000)
    assert train.labels.dtype == np.int32 and set(np.unique(train.labels)) == {0, 1}
    assert train.labels.sum() == 1000 and test.labels.sum() == 500
    assert all(isinstance(t, str) and t for t in train.texts)


def test_official_split_holds_validation_out_of_train_and_leaves_test_alone(sample_halves):
    train, test = sample_halves
    ds = data.make_splits(train, test, "official", validation_fraction=0.2, seed=42)
    assert (len(ds.train), len(ds.validation), len(ds.test)) == (1600, 400, 1000)
    assert ds.test is test  # the test half is passed through untouched
    train_ids = {id(t) for t in ds.train.texts}
    val_ids = {id(t) for t in ds.validation.texts}
    assert not train_ids & val_ids
    assert train_ids | val_ids == {id(t) for t in train.texts}
    assert not (train_ids | val_ids) & {id(t) for t in test.texts}
    original = {id(t): label for t, label in zip(train.texts, train.labels, strict=True)}
    for split in (ds.train, ds.validation):
        assert [original[id(t)] for t in split.texts] == split.labels.tolist()
    again = data.make_splits(train, test, "official", seed=42)
    assert again.validation.texts == ds.validation.texts
    other = data.make_splits(train, test, "official", seed=7)
    assert other.validation.texts != ds.validation.texts


def test_notebook_split_merges_both_halves_80_20(sample_halves):
    train, test = sample_halves
    ds = data.make_splits(train, test, "notebook", validation_fraction=0.2, seed=42)
    assert len(ds.test) == 600 and len(ds.train) + len(ds.validation) == 2400
    assert len(ds.validation) == 480
    ids = [{id(t) for t in s.texts} for s in (ds.train, ds.validation, ds.test)]
    assert not ids[0] & ids[1] and not ids[0] & ids[2] and not ids[1] & ids[2]
    assert ids[0] | ids[1] | ids[2] == {id(t) for t in train.texts + test.texts}
    # the merged test split draws from both published halves
    from_test_half = {id(t) for t in test.texts} & ids[2]
    assert 0 < len(from_test_half) < 600


def test_unknown_split_is_refused(sample_halves):
    with pytest.raises(DataError, match="split"):
        data.make_splits(*sample_halves, split="random")


def test_load_through_the_data_string():
    ds = data.load("sample", validation_fraction=0.1)
    assert (len(ds.train), len(ds.validation), len(ds.test), ds.source) == (1800, 200, 1000, "sample")


def write_jsonl(path: Path, rows: list[dict]) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")


def test_jsonl_folder_loads(tmp_path):
    write_jsonl(tmp_path / "train.jsonl.gz", [{"text": "good film", "label": 1}, {"text": "bad film", "label": 0}])
    write_jsonl(tmp_path / "test.jsonl.gz", [{"text": "great", "label": 1}])
    train, test = data.load_raw(str(tmp_path))
    assert labelled(train) == {"good film": 1, "bad film": 0}
    assert labelled(test) == {"great": 1}


def test_jsonl_folder_with_bad_rows_is_refused_naming_the_file(tmp_path):
    write_jsonl(tmp_path / "train.jsonl.gz", [{"text": "good film"}])
    write_jsonl(tmp_path / "test.jsonl.gz", [{"text": "great", "label": 1}])
    with pytest.raises(DataError, match="train.jsonl.gz") as raised:
        data.load_raw(str(tmp_path))
    assert "--data sample" in str(raised.value)
    (tmp_path / "train.jsonl.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="train.jsonl.gz"):
        data.load_raw(str(tmp_path))


def make_acl_folder(root: Path) -> Path:
    for (half, label, name), text in REVIEWS.items():
        folder = root / "aclImdb" / half / label
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    unsup = root / "aclImdb" / "train" / "unsup"
    unsup.mkdir()
    (unsup / "0_0.txt").write_text("unlabelled review", encoding="utf-8")
    (root / "aclImdb" / "imdb.vocab").write_text("the\nand\n", encoding="utf-8")
    return root / "aclImdb"


def test_aclimdb_folder_loads_with_the_right_labels(tmp_path):
    folder = make_acl_folder(tmp_path)
    for source in (folder, tmp_path):  # the aclImdb folder itself or the folder holding it
        train, test = data.load_raw(str(source))
        assert labelled(train) == expected("train")
        assert labelled(test) == expected("test")


def test_aclimdb_archive_loads_with_the_right_labels(tmp_path):
    folder = make_acl_folder(tmp_path / "src")
    archive = tmp_path / "aclImdb_v1.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="aclImdb")
    train, test = data.load_raw(str(archive))
    assert labelled(train) == expected("train")
    assert labelled(test) == expected("test")
    # the order does not depend on the order of the archive's members
    shuffled = tmp_path / "shuffled.tar.gz"
    with tarfile.open(shuffled, "w:gz") as tar:
        for path in sorted(folder.rglob("*.txt"), reverse=True):
            tar.add(path, arcname=str(Path("aclImdb") / path.relative_to(folder)))
    train2, test2 = data.load_raw(str(shuffled))
    assert train2.texts == train.texts and test2.texts == test.texts


@pytest.mark.parametrize("make", ["missing", "garbage_archive", "empty_folder", "plain_file", "archive_no_reviews"])
def test_unreadable_sources_raise_dataerror_naming_alternatives(tmp_path, make):
    if make == "missing":
        source = tmp_path / "nowhere"
    elif make == "garbage_archive":
        source = tmp_path / "aclImdb_v1.tar.gz"
        source.write_bytes(b"\x00garbage" * 100)
    elif make == "empty_folder":
        source = tmp_path
    elif make == "plain_file":
        source = tmp_path / "reviews.csv"
        source.write_text("text,label\ngood,1\n")
    else:
        source = tmp_path / "other.tar.gz"
        with tarfile.open(source, "w:gz") as tar:
            payload = b"hello"
            info = tarfile.TarInfo("notes/readme.txt")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    with pytest.raises(DataError) as raised:
        data.load_raw(str(source))
    message = str(raised.value)
    assert "--data sample" in message and "aclImdb" in message
    assert str(source.name) in message


def test_acl_folder_without_test_reviews_is_refused(tmp_path):
    folder = make_acl_folder(tmp_path)
    for path in (folder / "test").rglob("*.txt"):
        path.unlink()
    with pytest.raises(DataError, match="test") as raised:
        data.load_raw(str(folder))
    assert "--data sample" in str(raised.value)


# --- tensorflow-datasets -------------------------------------------------------------------------

N_MOCK = 40


@pytest.fixture
def mocked_tfds(tmp_path):
    """tfds.load under `mock_data`, with metadata giving each split's size, as tfds' docs advise.

    Without split sizes tfds turns `batch_size=-1` into a batch of sys.maxsize and aborts the process.
    """
    tfds = pytest.importorskip("tensorflow_datasets")
    meta = tmp_path / "tfds" / "imdb_reviews" / "plain_text" / "1.0.0"
    meta.mkdir(parents=True)
    splits = [{"name": s, "shardLengths": [str(N_MOCK)]} for s in ("train", "test", "unsupervised")]
    (meta / "dataset_info.json").write_text(json.dumps(
        {"name": "imdb_reviews", "version": "1.0.0", "configName": "plain_text", "splits": splits}))
    with tfds.testing.mock_data(num_examples=N_MOCK, data_dir=str(tmp_path / "tfds")):
        yield tfds


def test_tfds_loads_under_mock_data(mocked_tfds):
    train, test = data.load_raw("tfds")
    assert len(train) == len(test) == N_MOCK
    assert all(isinstance(t, str) for t in train.texts)
    assert train.labels.dtype == np.int32 and set(np.unique(train.labels)) <= {0, 1}


def test_tfds_trains_a_run_under_mock_data(mocked_tfds, tmp_path, tiny_config):
    from sentiment_core.runner import train_and_save

    run = train_and_save(tiny_config(vocab_size=100, maxlen=10, units=4), "tfds", tmp_path / "tfds-run",
                         cache_dir=tmp_path / "cache", grad_probe=False)
    assert run.meta["data"] == "tfds"
    # mock reviews are random strings: those with no word of the 100 kept are not scored (no_words)
    assert run.metrics["n"] + run.metrics["no_words"] == N_MOCK and run.metrics["n"] > 0
    assert run.meta["samples"] == {"train": N_MOCK - 8, "validation": 8, "test": N_MOCK}


def test_tfds_failure_raises_and_substitutes_nothing(monkeypatch, tmp_path, tiny_config):
    tfds = pytest.importorskip("tensorflow_datasets")
    from sentiment_core.runner import train_and_save

    def offline(*args, **kwargs):
        raise ConnectionError("no route to host")

    monkeypatch.setattr(tfds, "load", offline)
    with pytest.raises(DataError) as raised:
        data.load_raw("tfds")
    message = str(raised.value)
    assert "no route to host" in message
    assert "--data sample" in message and "aclImdb" in message and "jsonl" in message
    with pytest.raises(DataError):
        train_and_save(tiny_config(), "tfds", tmp_path / "runs" / "r", cache_dir=tmp_path / "cache")
    assert not (tmp_path / "runs" / "r").exists()
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())
