"""The app's path (load a run, predict, read, occlude, connectivity, export a script) never imports TensorFlow,
Keras or JAX, nor training code."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = r"""
import json, sys
from sentiment_core import connectivity, export, inference, insights, runs, text
run = runs.load_run(sys.argv[1])
engine = inference.Engine.from_run(run)
probabilities = engine.predict(["a wonderful, moving film", "dull and far too long"])
reading = engine.read("a wonderful, moving film")
tokens, occlusion = engine.occlusion("a wonderful, moving film")
path = insights.trajectory(engine, run.insights, "a wonderful, moving film")
_, memory = connectivity.connectivity(engine, "a wonderful, moving film")
script = export.script_for(run.config, run.name)
print(json.dumps({
    "probabilities": probabilities.tolist(),
    "read": reading.probability,
    "occlusion": len(occlusion),
    "trajectory": list(path.shape),
    "connectivity": len(memory),
    "script": len(script) > 0,
    "heavy": sorted(m for m in ("tensorflow", "keras", "jax", "jaxlib", "torch") if m in sys.modules),
    "training": sorted(m for m in sys.modules if m.startswith("sentiment_core.")
                       and m.split(".")[1] in ("models", "lean_rnn", "train", "gradients", "explain")),
}))
"""


def test_inference_runs_without_tensorflow_keras_or_jax(gru_run):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(gru_run.path)], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["heavy"] == [] and result["training"] == []
    assert len(result["probabilities"]) == 2 and all(0 < p < 1 for p in result["probabilities"])
    assert abs(result["read"] - result["probabilities"][0]) < 1e-6
    assert result["occlusion"] == 4 and result["trajectory"] == [4, 2]
    assert result["connectivity"] == 4 and result["script"]


@pytest.mark.parametrize("shape", [{}, {"members": 2, "members_apart": True, "dropout": 0.5, "word_dropout": 0.3,
                                           "bidirectional": True, "pooling": "max", "bigram_buckets": 500}],
                         ids=["tiny", "best-shaped-apart"])
def test_a_training_worker_loads_no_tensorflow_pandas_or_ipython(tmp_path, tiny_config, shape):
    """A job's worker process, start to end (train, grad probe, evaluate, save the run with model.keras):
    Keras would import TensorFlow to seed it and to save (~440 MB), pandas and IPython when installed.
    Networks trained apart: the worker builds their ensemble, and each member process trains one."""
    from sentiment_core.memlog import ENV
    from sentiment_core.protocol import JOB_FILE, RESULT_FILE, Job, JobState, read_result

    job_dir = tmp_path / "job"
    job_dir.mkdir()
    job = Job(id="notf", owner="test", name="notf", data="sample", config=tiny_config(epochs=1, **shape).to_dict(),
              state=JobState.RUNNING, submitted=0.0, run_path=str(tmp_path / "runs" / "notf"),
              cache_dir=str(tmp_path / "cache"))
    (job_dir / JOB_FILE).write_text(job.to_json(), encoding="utf-8")
    marks = tmp_path / "memory.jsonl"
    env = {**os.environ, "PYTHONPATH": str(ROOT), ENV: str(marks), "SENTIMENT_WORKER_NICE": "0"}
    done = subprocess.run([sys.executable, "-m", "sentiment_core.jobs", str(job_dir)], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = read_result(job_dir / RESULT_FILE)
    assert result is not None and result.state == JobState.DONE, result
    phases = [json.loads(line) for line in marks.read_text().splitlines()]
    assert {"grad probe", "write run"} <= {m["phase"] for m in phases} and phases[-1]["phase"] == "done"
    assert [(m["phase"], m["heavy"]) for m in phases if m["heavy"]] == []
    assert (tmp_path / "runs" / "notf" / "model.keras").exists()


def test_training_code_takes_the_weight_format_from_weights_py_not_from_the_engine():
    imported = set()
    for node in ast.walk(ast.parse((ROOT / "sentiment_core" / "models.py").read_text())):
        if isinstance(node, ast.ImportFrom):  # `from .weights import x` or `from . import weights`
            imported |= {node.module} if node.module else {alias.name for alias in node.names}
    assert "weights" in imported and "inference" not in imported
