"""Installs tfp_vqvae; the version is read from tfp_vqvae/__init__.py."""

import os
import re

import setuptools

_HERE = os.path.dirname(os.path.abspath(__file__))
_FIGURES_EXTRA = ["scikit-learn>=1.5", "threadpoolctl>=3"]


def _version():
  with open(os.path.join(_HERE, "tfp_vqvae", "__init__.py")) as f:
    return re.search(r'^__version__ = "([^"]+)"', f.read(), re.M).group(1)


def _long_description():
  with open(os.path.join(_HERE, "README.md")) as f:
    return f.read()


setuptools.setup(
    name="tfp_vqvae",
    version=_version(),
    description=("VQ-VAE with TensorFlow Probability: EMA vector quantizer, "
                 "training CLI and TF Serving SavedModel export."),
    long_description=_long_description(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    packages=setuptools.find_packages(include=["tfp_vqvae", "tfp_vqvae.*"]),
    python_requires=">=3.10",
    install_requires=[
        "tensorflow>=2.21,<2.22",
        "tensorflow-probability[tf]>=0.25,<0.26",
        "tensorflow-datasets>=4.9",
        # TFDS 4.9 imports it when it downloads and prepares a dataset but does not
        # declare it; without it `--dataset=kmnist` from TFDS fails on a fresh machine.
        "importlib_resources",
        "tensorflow-serving-api>=2.21,<2.22",
        # keras_layers.py imports Keras 3 directly (TF 2.21 installs it as `keras`).
        "keras>=3.12",
        # tf.summary writes nothing without it (TF 2.21 no longer depends on it).
        "tensorboard",
        "absl-py",
        "numpy",
        # The trainers' Adam and float16 loss scaling (tfp_vqvae/optimization.py);
        # installed with tensorflow-probability[tf] too, declared as imported directly.
        "tf_keras",
        # serving_client.GrpcClient; installed with tensorflow-serving-api too.
        "grpcio",
        # The run's PNG figures (figures.py, plots.py), drawn headless on Agg.
        "matplotlib>=3.8",
        # The client decodes image files without TensorFlow (tfp_vqvae/client.py);
        # matplotlib requires it too.
        "pillow>=9",
    ],
    # The command-line programs; `python -m tfp_vqvae.<module>` runs the same.
    entry_points={
        "console_scripts": [
            "tfp-vqvae-train = tfp_vqvae.train:run",
            "tfp-vqvae-train-prior = tfp_vqvae.train_prior:run",
            "tfp-vqvae-sample = tfp_vqvae.sample:run",
            "tfp-vqvae-export = tfp_vqvae.export:run",
            "tfp-vqvae-client = tfp_vqvae.client:run",
            "tfp-vqvae-benchmark = tfp_vqvae.benchmark:main",
            "tfp-vqvae-data-export = tfp_vqvae.data_export:run",
        ],
    },
    extras_require={
        # codebook_tsne.png: scikit-learn's t-SNE, run on one OpenMP thread.
        "figures": _FIGURES_EXTRA,
        # pytest-xdist: the suite runs in two processes (README, "Test"), ~18 min -> less.
        "test": ["pytest", "pytest-xdist", "scipy"] + _FIGURES_EXTRA,
    },
)
