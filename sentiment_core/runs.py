"""A run on disk: the unit that training, prediction, the app and the CLI share.

A run is a folder of JSON, NPZ and one `model.keras`, listed with SHA-256 sums in
`manifest.json`. It is written into a hidden temporary folder and renamed into
place, so a crash leaves the old run or none, never half of one. Reading checks
every sum and names the file at fault. Nothing is ever unpickled, and the app
never loads `model.keras` (Keras' loader has had bypasses); weights come from
`weights.npz`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .config import Config, ConfigError
from .people import Actor, NotAllowed
from .text import Vocabulary

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_DIR = ROOT / "artifacts" / "shipped"
RUNS_DIR = Path(os.environ.get("SENTIMENT_RUNS_DIR", ROOT / "artifacts" / "runs"))
REQUIRED = ("config.json", "vocab.json", "weights.npz", "history.json", "metrics.json", "meta.json")
OPTIONAL = ("model.keras", "insights.npz", "card.md")
MANIFEST = "manifest.json"
# Who trained or imported a user run on this server, their display name and the challenge it was submitted
# for: {"owner": people.owner_tag, "nickname": ..., "challenge": ...}. A server's fact about the run, like
# `.pinned`: outside the manifest, left out of a run's zip, never read as part of the run.
STUDENT_FILE = ".student.json"
MAX_ZIP_BYTES = 200 * 2**20
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class RunError(RuntimeError):
    """A run is missing, damaged, edited or badly named; the message names the file."""


def check_name(name: str) -> str:
    """Refuse names that could leave the runs folder or hide in it."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or ".." in name:
        raise RunError(f"invalid run name {name!r}: use 1-64 letters, digits, '.', '_' or '-', "
                       "starting with a letter or digit, with no '/' or '..'")
    return name


def new_name(prefix: str = "run") -> str:
    return check_name(f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}-{os.urandom(2).hex()}")


@dataclass(frozen=True)
class Run:
    path: Path
    config: Config
    vocab: Vocabulary
    weights: dict[str, np.ndarray]
    history: dict
    metrics: dict
    meta: dict
    insights: dict[str, np.ndarray]

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def shipped(self) -> bool:
        return self.path.parent.resolve() == SHIPPED_DIR.resolve()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_run(path: Path, config: Config, vocab: Vocabulary, weights: dict[str, np.ndarray], history: dict,
              metrics: dict, meta: dict, insights: dict[str, np.ndarray] | None = None, card: str = "",
              save_model: Callable[[Path], None] | None = None, overwrite: bool = False) -> Path:
    """Write every file into a temporary sibling folder, then rename it into place."""
    path = Path(path)
    check_name(path.name)
    if path.exists() and not overwrite:
        raise RunError(f"run {path.name!r} already exists in {path.parent}; choose another name")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{path.name}-", dir=path.parent))
    try:
        documents = {"config.json": config.to_dict(), "vocab.json": list(vocab.words), "history.json": history,
                     "metrics.json": metrics, "meta.json": meta}
        for filename, document in documents.items():
            (tmp / filename).write_text(json.dumps(document, indent=1, allow_nan=False), encoding="utf-8")
        np.savez(tmp / "weights.npz", **weights)
        if insights:
            np.savez(tmp / "insights.npz", **insights)
        if card:
            (tmp / "card.md").write_text(card, encoding="utf-8")
        if save_model is not None:
            save_model(tmp / "model.keras")
        files = sorted(p.name for p in tmp.iterdir())
        manifest = {"files": {name: _sha256(tmp / name) for name in files}}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        for p in tmp.iterdir():
            with open(p, "rb") as f:
                os.fsync(f.fileno())
        _fsync_dir(tmp)
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".old-{path.name}-", dir=path.parent))
            os.replace(path, old / "run")
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def verify(path: Path) -> dict[str, str]:
    """Check the manifest against the files; return it, or raise RunError naming the file."""
    path = Path(path)
    if not path.is_dir():
        raise RunError(f"no run at {path}")
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))["files"]
    except FileNotFoundError as error:
        raise RunError(f"run {path.name!r}: {MANIFEST} is missing (not a run, or an unfinished save)") from error
    except (ValueError, KeyError, TypeError) as error:
        raise RunError(f"run {path.name!r}: {MANIFEST} is damaged ({error})") from error
    if not isinstance(manifest, dict):
        raise RunError(f"run {path.name!r}: {MANIFEST} is damaged (its files are not a name -> checksum map)")
    for name in REQUIRED:
        if name not in manifest:
            raise RunError(f"run {path.name!r}: {name} is not listed in {MANIFEST}")
    for name, digest in manifest.items():
        if name not in REQUIRED + OPTIONAL:
            raise RunError(f"run {path.name!r}: unexpected file {name!r} in {MANIFEST}")
        if not (path / name).is_file():
            raise RunError(f"run {path.name!r}: {name} is missing")
        if _sha256(path / name) != digest:
            raise RunError(f"run {path.name!r}: {name} was modified or truncated (checksum mismatch)")
    return manifest


def _json(path: Path, name: str) -> Any:
    try:
        return json.loads((path / name).read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise RunError(f"run {path.name!r}: {name} is not valid JSON ({error})") from error


def _npz(path: Path, name: str) -> dict[str, np.ndarray]:
    try:
        with np.load(path / name, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise RunError(f"run {path.name!r}: {name} is not a readable NPZ ({error})") from error


def load_run(path: Path | str) -> Run:
    path = Path(path)
    manifest = verify(path)
    try:
        config = Config.from_dict(_json(path, "config.json"))
    except (ConfigError, TypeError) as error:
        raise RunError(f"run {path.name!r}: config.json is invalid ({error})") from error
    words = _json(path, "vocab.json")
    if not isinstance(words, list) or len(words) < 2 or not all(isinstance(w, str) for w in words):
        raise RunError(f"run {path.name!r}: vocab.json is not a list of words")
    insights = _npz(path, "insights.npz") if "insights.npz" in manifest else {}
    return Run(path, config, Vocabulary(tuple(words)), _npz(path, "weights.npz"), _json(path, "history.json"),
               _json(path, "metrics.json"), _json(path, "meta.json"), insights)


def run_dirs(*folders: Path) -> list[Path]:
    """Run folders, newest first; hidden temporary folders are not runs."""
    found = []
    for folder in folders:
        if Path(folder).is_dir():
            found += [p for p in Path(folder).iterdir() if p.is_dir() and not p.name.startswith(".")]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def list_runs(runs_dir: Path = RUNS_DIR, shipped_dir: Path = SHIPPED_DIR) -> list[dict]:
    """A summary row per run; damaged runs are listed with their error instead of hidden."""
    rows = []
    for path in [*run_dirs(shipped_dir), *run_dirs(runs_dir)]:
        row = {"name": path.name, "path": str(path), "shipped": path.parent.resolve() == Path(shipped_dir).resolve()}
        try:
            meta = _json(path, "meta.json")
            metrics = _json(path, "metrics.json")
            row.update(created=meta.get("created"), cell=meta.get("config", {}).get("cell"),
                       status=meta.get("status"), test_accuracy=metrics.get("accuracy"))
        except (RunError, OSError) as error:
            row["error"] = str(error)
        rows.append(row)
    return rows


def resolve(name: str, runs_dir: Path = RUNS_DIR, shipped_dir: Path = SHIPPED_DIR) -> Path:
    """A run's folder from its name, looking in the user runs and then the shipped ones."""
    check_name(name)
    for folder in (runs_dir, shipped_dir):
        if (Path(folder) / name).is_dir():
            return Path(folder) / name
    raise RunError(f"no run named {name!r}")


def read_student(path: Path) -> dict:
    """A run's STUDENT_FILE, or {} when it has none (shipped, trained from the command line, older) or it
    cannot be read."""
    try:
        document = json.loads((Path(path) / STUDENT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    return document if isinstance(document, dict) else {}


def write_student(path: Path, owner_tag: str | None, nickname: str | None = None, challenge: str | None = None
                  ) -> None:
    """Record who made a run here (atomically: readers see the old record or the new one)."""
    document = {"owner": owner_tag, "nickname": nickname, "challenge": challenge}
    tmp = Path(path) / f".student.{os.urandom(3).hex()}.tmp"
    tmp.write_text(json.dumps(document), encoding="utf-8")
    os.replace(tmp, Path(path) / STUDENT_FILE)


def _remove(path: Path) -> None:
    trash = Path(tempfile.mkdtemp(prefix=f".del-{path.name}-", dir=path.parent))
    os.replace(path, trash / "run")
    shutil.rmtree(trash, ignore_errors=True)


def delete_run(name: str, runs_dir: Path, by: Actor) -> None:
    """Delete a user run, for the student who made it here or the teacher (a run with no student recorded,
    from the command line or an older server, is the teacher's to delete). Shipped runs live elsewhere and
    cannot be reached from here. Raises RunError or people.NotAllowed; nothing changes then."""
    path = Path(runs_dir) / check_name(name)
    if not path.is_dir():
        raise RunError(f"no run named {name!r} in {runs_dir}")
    if not by.may_act_on(tag=read_student(path).get("owner")):
        raise NotAllowed(f"run {name!r} is not yours: only the student who trained it, or the teacher, can "
                         "delete it")
    _remove(path)


def to_zip(path: Path) -> bytes:
    verify(path)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(p.name for p in Path(path).iterdir() if p.is_file()):
            if name in REQUIRED + OPTIONAL + (MANIFEST,):
                archive.write(Path(path) / name, name)
    return buffer.getvalue()


def import_zip(payload: bytes, name: str, runs_dir: Path = RUNS_DIR, owner_tag: str | None = None) -> Path:
    """Add a downloaded run back; anything that is not an intact run is refused. `owner_tag`: the importing
    student's (people.owner_tag), who may then delete it."""
    check_name(name)
    if len(payload) > MAX_ZIP_BYTES:
        raise RunError(f"the zip is larger than {MAX_ZIP_BYTES // 2**20} MB")
    target = Path(runs_dir) / name
    if target.exists():
        raise RunError(f"run {name!r} already exists; choose another name")
    Path(runs_dir).mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=runs_dir))
    try:
        try:
            archive = zipfile.ZipFile(io.BytesIO(payload))
            members = archive.infolist()
        except (zipfile.BadZipFile, ValueError) as error:
            raise RunError(f"not a zip file ({error})") from error
        allowed = set(REQUIRED + OPTIONAL + (MANIFEST,))
        total = 0
        for member in members:
            if member.filename not in allowed:
                raise RunError(f"not a run: unexpected entry {member.filename!r} in the zip")
            total += member.file_size
            if total > 4 * MAX_ZIP_BYTES:
                raise RunError("the zip expands to more than a run can hold")
            (tmp / member.filename).write_bytes(archive.read(member))
        load_run(tmp)  # raises RunError naming what is wrong
        if owner_tag:
            write_student(tmp, owner_tag)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def disk_usage(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def prune(runs_dir: Path = RUNS_DIR, max_bytes: int | None = None, keep: set[str] = frozenset()) -> list[str]:
    """Delete the oldest runs past `max_bytes` in all; pinned runs (a `.pinned` file) and `keep` stay."""
    if max_bytes is None:
        max_bytes = int(float(os.environ.get("SENTIMENT_RUNS_MAX_MB", "2000")) * 2**20)
    runs = run_dirs(runs_dir)
    total = sum(disk_usage(p) for p in runs)
    removed = []
    for path in reversed(runs):  # oldest first
        if total <= max_bytes:
            break
        if (path / ".pinned").exists() or path.name in keep:
            continue
        total -= disk_usage(path)
        _remove(path)
        removed.append(path.name)
    return removed
