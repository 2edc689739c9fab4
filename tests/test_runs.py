"""Runs on disk: atomic writes, checksums that name the file at fault, safe names, zips, pruning, no pickle."""

from __future__ import annotations

import io
import json
import os
import pathlib
import zipfile
from pathlib import Path

import numpy as np
import pytest

from sentiment_core import runs
from sentiment_core.config import Config
from sentiment_core.people import Actor, NotAllowed, owner_tag
from sentiment_core.runs import RunError
from sentiment_core.text import Vocabulary


def contents(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    config = Config(vocab_size=100, maxlen=10, units=4, embedding_dim=3)
    return dict(
        config=config,
        vocab=Vocabulary(("", "[UNK]", "good", "bad", "film")),
        weights={"embedding": rng.normal(size=(100, 3)).astype(np.float32),
                 "rnn_1/forward/kernel": rng.normal(size=(3, 12)).astype(np.float32),
                 "rnn_1/forward/recurrent_kernel": rng.normal(size=(4, 12)).astype(np.float32),
                 "rnn_1/forward/bias": rng.normal(size=(2, 12)).astype(np.float32),
                 "head/kernel": rng.normal(size=(4, 1)).astype(np.float32),
                 "head/bias": np.zeros(1, np.float32)},
        history={"epochs": [{"epoch": 1, "loss": 0.6, "val_loss": 0.5}], "best_epoch": 1},
        metrics={"accuracy": 0.5 + seed / 100, "loss": 0.69, "n": 10},
        meta={"created": "2024-01-01T00:00:00", "status": "complete", "seed": seed},
        insights={"pca_mean": np.zeros(4, np.float32)},
        card="# Model card\n",
        save_model=lambda p: p.write_bytes(b"keras zip stand-in"),
    )


def write(path: Path, seed: int = 0, **changes) -> Path:
    return runs.write_run(path, **{**contents(seed), **changes})


def entries(folder: Path) -> list[str]:
    """Everything in a folder, hidden names included."""
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_write_then_load_round_trip(tmp_path):
    written = contents()
    path = write(tmp_path / "r1")
    run = runs.load_run(path)
    assert run.name == "r1" and run.config == written["config"] and run.vocab == written["vocab"]
    assert run.weights.keys() == written["weights"].keys()
    for key, value in written["weights"].items():
        np.testing.assert_array_equal(run.weights[key], value)
        assert run.weights[key].dtype == np.float32
    assert (run.history, run.metrics, run.meta) == (written["history"], written["metrics"], written["meta"])
    np.testing.assert_array_equal(run.insights["pca_mean"], np.zeros(4))
    assert sorted(runs.verify(path)) == ["card.md", "config.json", "history.json", "insights.npz", "meta.json",
                                         "metrics.json", "model.keras", "vocab.json", "weights.npz"]
    assert entries(tmp_path) == ["r1"]  # no temporary folder left behind
    assert runs.resolve("r1", tmp_path, tmp_path / "none") == path
    assert [row["name"] for row in runs.list_runs(tmp_path, tmp_path / "none")] == ["r1"]


def test_an_existing_run_is_not_overwritten_by_default(tmp_path):
    write(tmp_path / "r1", seed=1)
    with pytest.raises(RunError, match="already exists"):
        write(tmp_path / "r1", seed=2)
    assert runs.load_run(tmp_path / "r1").meta["seed"] == 1
    write(tmp_path / "r1", seed=2, overwrite=True)
    assert runs.load_run(tmp_path / "r1").meta["seed"] == 2
    assert entries(tmp_path) == ["r1"]


def crash(*args, **kwargs):
    raise OSError("disk full")


@pytest.mark.parametrize("where", ["save_model", "np.savez", "interrupt"])
def test_an_interrupted_save_leaves_no_run(tmp_path, monkeypatch, where):
    changes = {}
    if where == "save_model":
        changes["save_model"] = crash
    elif where == "np.savez":
        real, calls = np.savez, []

        def savez_then_crash(*args, **kwargs):  # the weights are written, the insights are not
            calls.append(args[0])
            if len(calls) == 2:
                raise OSError("disk full")
            return real(*args, **kwargs)

        monkeypatch.setattr(runs.np, "savez", savez_then_crash)
    else:
        def interrupted(path):
            raise KeyboardInterrupt

        changes["save_model"] = interrupted
    with pytest.raises((OSError, KeyboardInterrupt)):
        write(tmp_path / "r1", **changes)
    assert entries(tmp_path) == []
    assert runs.run_dirs(tmp_path) == [] and runs.list_runs(tmp_path, tmp_path / "none") == []
    with pytest.raises(RunError):
        runs.resolve("r1", tmp_path, tmp_path / "none")


def test_a_crash_while_overwriting_keeps_the_old_run(tmp_path):
    write(tmp_path / "r1", seed=1)
    with pytest.raises(OSError):
        write(tmp_path / "r1", seed=2, overwrite=True, save_model=crash)
    assert entries(tmp_path) == ["r1"]
    run = runs.load_run(tmp_path / "r1")
    assert run.meta["seed"] == 1 and run.metrics["accuracy"] == 0.51


def test_a_folder_without_manifest_is_not_a_run(tmp_path):
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text("{}")
    with pytest.raises(RunError, match="manifest.json"):
        runs.load_run(tmp_path / "half")


@pytest.mark.parametrize("victim", ["weights.npz", "metrics.json", "config.json", "vocab.json", "insights.npz",
                                    "model.keras", "card.md"])
def test_an_edited_file_is_refused_by_name(tmp_path, victim):
    path = write(tmp_path / "r1")
    raw = bytearray((path / victim).read_bytes())
    raw[len(raw) // 2] ^= 0x01
    (path / victim).write_bytes(bytes(raw))
    with pytest.raises(RunError, match=victim.replace(".", r"\.")):
        runs.load_run(path)


def test_edited_json_is_refused_by_name(tmp_path):
    path = write(tmp_path / "r1")
    metrics = json.loads((path / "metrics.json").read_text())
    metrics["accuracy"] = 0.99
    (path / "metrics.json").write_text(json.dumps(metrics, indent=1))
    with pytest.raises(RunError, match=r"metrics\.json"):
        runs.load_run(path)


@pytest.mark.parametrize("victim", ["history.json", "weights.npz", "meta.json"])
def test_missing_and_truncated_files_are_named(tmp_path, victim):
    path = write(tmp_path / "missing")
    (path / victim).unlink()
    with pytest.raises(RunError, match=rf"{victim.replace('.', '[.]')} is missing"):
        runs.load_run(path)
    path = write(tmp_path / "truncated")
    raw = (path / victim).read_bytes()
    (path / victim).write_bytes(raw[: len(raw) // 2])
    with pytest.raises(RunError, match=victim.replace(".", "[.]")):
        runs.load_run(path)


def rewrite_manifest(path: Path) -> None:
    """What a careful forger does: recompute every checksum after editing."""
    files = sorted(p.name for p in path.iterdir() if p.name != runs.MANIFEST)
    (path / runs.MANIFEST).write_text(json.dumps({"files": {n: runs._sha256(path / n) for n in files}}))


@pytest.mark.parametrize("manifest", ["[]", "{}", '{"files": ["config.json"]}', '{"files": "config.json"}',
                                      "not json", json.dumps({"files": list(runs.REQUIRED)}),
                                      json.dumps({"files": " ".join(runs.REQUIRED)}),
                                      json.dumps({"files": {n: 1 for n in runs.REQUIRED}})])
def test_a_damaged_manifest_is_refused(tmp_path, manifest):
    path = write(tmp_path / "r1")
    (path / runs.MANIFEST).write_text(manifest)
    with pytest.raises(RunError, match="manifest.json|config.json"):
        runs.load_run(path)


def test_a_manifest_listing_a_stranger_is_refused(tmp_path):
    path = write(tmp_path / "r1")
    (path / "extra.py").write_text("print('hi')")
    rewrite_manifest(path)
    with pytest.raises(RunError, match="extra.py"):
        runs.load_run(path)


@pytest.mark.parametrize("victim,payload", [("weights.npz", b""), ("weights.npz", b"PK\x03\x04 not really"),
                                            ("vocab.json", b'{"a": 1}'), ("config.json", b'{"units": 0}'),
                                            ("history.json", b"\xff\xfe")])
def test_consistent_but_invalid_files_are_refused_by_name(tmp_path, victim, payload):
    path = write(tmp_path / "r1")
    (path / victim).write_bytes(payload)
    rewrite_manifest(path)
    with pytest.raises(RunError, match=victim.replace(".", "[.]")):
        runs.load_run(path)


class Payload:
    """Unpickling this would create a file: the proof that something was unpickled."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (self.marker,)


def test_object_arrays_are_never_unpickled(tmp_path):
    marker = tmp_path / "unpickled"
    weights = {**contents()["weights"], "embedding": np.array([Payload(marker)], dtype=object)}
    path = write(tmp_path / "r1", weights=weights)
    with pytest.raises(RunError, match=r"weights\.npz"):
        runs.load_run(path)
    assert not marker.exists()


BAD_NAMES = ["../x", "a/b", "..", "", ".hidden", "x" * 65, "a..b", "/etc", "run\n", "run\x00", "-rf", "r un",
             "\u00e9t\u00e9", "a\\b"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_path_escaping_names_are_refused_everywhere(tmp_path, name):
    runs_dir = tmp_path / "runs"
    write(runs_dir / "good")
    (tmp_path / "x").mkdir()  # what "../x" would reach
    payload = runs.to_zip(runs_dir / "good")
    with pytest.raises(RunError, match="invalid run name"):
        runs.check_name(name)
    with pytest.raises(RunError, match="invalid run name"):
        runs.resolve(name, runs_dir, tmp_path)
    with pytest.raises(RunError, match="invalid run name"):
        runs.delete_run(name, runs_dir, Actor("anyone"))
    with pytest.raises(RunError, match="invalid run name"):
        runs.import_zip(payload, name, runs_dir)
    if name and Path(name).name == name:  # write_run checks the name of the folder it is given
        with pytest.raises(RunError, match="invalid run name"):
            write(runs_dir / name)
    assert (tmp_path / "x").is_dir()
    assert entries(runs_dir) == ["good"]
    assert entries(tmp_path) == ["runs", "x"]


@pytest.mark.parametrize("name", ["run-1", "a", "A.b_c-9", "x" * 64])
def test_good_names_are_accepted(name):
    assert runs.check_name(name) == name


def test_new_names_are_valid_and_distinct():
    names = {runs.new_name("job") for _ in range(20)}
    assert len(names) == 20 and all(runs.check_name(n) for n in names)


def test_delete_run_is_for_its_student_or_the_teacher(tmp_path, monkeypatch):
    write(tmp_path / "r1")
    write(tmp_path / "r2")
    write(tmp_path / "cli-run")  # no student recorded: the teacher's
    runs.write_student(tmp_path / "r1", owner_tag("ana"), "Ana")
    runs.write_student(tmp_path / "r2", owner_tag("bob"), "Bob")
    with pytest.raises(NotAllowed, match="not yours"):
        runs.delete_run("r1", tmp_path, Actor("bob"))
    with pytest.raises(NotAllowed, match="not yours"):
        runs.delete_run("cli-run", tmp_path, Actor("ana"))
    assert entries(tmp_path) == ["cli-run", "r1", "r2"]
    runs.delete_run("r1", tmp_path, Actor("ana"))
    assert entries(tmp_path) == ["cli-run", "r2"]
    with pytest.raises(RunError, match="no run"):
        runs.delete_run("r1", tmp_path, Actor("ana"))
    monkeypatch.setenv("SENTIMENT_TEACHER_TOKEN", "s3cret-token")
    with pytest.raises(NotAllowed):
        runs.delete_run("r2", tmp_path, Actor("eve", token="s3cret-tokeN"))
    runs.delete_run("r2", tmp_path, Actor("teacher", token="s3cret-token"))
    runs.delete_run("cli-run", tmp_path, Actor("teacher", token="s3cret-token"))
    assert entries(tmp_path) == []


def test_zip_round_trip(tmp_path):
    source = write(tmp_path / "a" / "r1")
    (source / "stray.txt").write_text("not part of the run")
    payload = runs.to_zip(source)
    with zipfile.ZipFile(io.BytesIO(payload)) as archive:
        assert "stray.txt" not in archive.namelist() and runs.MANIFEST in archive.namelist()
    target = runs.import_zip(payload, "copy", tmp_path / "b")
    assert target == tmp_path / "b" / "copy" and entries(tmp_path / "b") == ["copy"]
    a, b = runs.load_run(source), runs.load_run(target)
    assert (a.config, a.vocab, a.metrics, a.history) == (b.config, b.vocab, b.metrics, b.history)
    for key in a.weights:
        np.testing.assert_array_equal(a.weights[key], b.weights[key])
    with pytest.raises(RunError, match="already exists"):
        runs.import_zip(payload, "copy", tmp_path / "b")


def zip_of(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def run_files(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in path.iterdir()}


@pytest.mark.parametrize("case", ["not_zip", "extra_entry", "evil_entry", "absolute_entry", "edited_file",
                                  "missing_file", "empty_zip", "folder_entry"])
def test_bad_zips_are_refused_and_write_nothing(tmp_path, case):
    files = run_files(write(tmp_path / "src" / "r1"))
    if case == "not_zip":
        payload = b"this is not a zip file"
    elif case == "extra_entry":
        payload = zip_of({**files, "notes.txt": b"hello"})
    elif case == "evil_entry":
        payload = zip_of({**files, "../evil": b"owned"})
    elif case == "absolute_entry":
        payload = zip_of({**files, str(tmp_path / "evil"): b"owned"})
    elif case == "edited_file":
        metrics = json.loads(files["metrics.json"])
        metrics["accuracy"] = 1.0
        payload = zip_of({**files, "metrics.json": json.dumps(metrics).encode()})
    elif case == "missing_file":
        payload = zip_of({k: v for k, v in files.items() if k != "vocab.json"})
    elif case == "empty_zip":
        payload = zip_of({})
    else:
        payload = zip_of({**files, "sub/": b""})
    runs_dir = tmp_path / "runs"
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    with pytest.raises(RunError) as raised:
        runs.import_zip(payload, "imported", runs_dir)
    if case == "edited_file":
        assert "metrics.json" in str(raised.value)
    if case == "evil_entry":
        assert "../evil" in str(raised.value)
    assert entries(runs_dir) == []
    assert not (tmp_path / "evil").exists()
    after = sorted(str(p) for p in tmp_path.rglob("*") if p != runs_dir)
    assert after == before


def test_prune_removes_the_oldest_unpinned_runs(tmp_path):
    for i in range(4):
        path = write(tmp_path / f"r{i}", seed=i)
        os.utime(path, (1_000_000 + i * 100, 1_000_000 + i * 100))  # r0 oldest, r3 newest
    (tmp_path / "r0" / ".pinned").touch()
    os.utime(tmp_path / "r0", (1_000_000, 1_000_000))
    size = runs.disk_usage(tmp_path / "r1")
    total = sum(runs.disk_usage(tmp_path / f"r{i}") for i in range(4))
    assert runs.prune(tmp_path, max_bytes=total + 1) == []
    removed = runs.prune(tmp_path, max_bytes=total - size // 2)  # one run must go: the oldest unpinned
    assert removed == ["r1"]
    assert entries(tmp_path) == ["r0", "r2", "r3"]
    removed = runs.prune(tmp_path, max_bytes=0, keep={"r3"})
    assert removed == ["r2"]
    assert entries(tmp_path) == ["r0", "r3"]
    runs.load_run(tmp_path / "r0")
