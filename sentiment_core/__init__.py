"""RNN Sentiment Lab's engine: data, text, models, training, runs on disk, and NumPy inference.

Importing the package imports no deep-learning library. It only picks the Keras backend
for whatever imports Keras later: JAX, measured fastest here (benchmarks/pipeline.py);
set KERAS_BACKEND before importing to choose another.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
