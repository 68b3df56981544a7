"""keras-resnet-he2015: the networks of He et al. (2015) for Keras 3.

The distribution is named `keras-resnet-he2015` so that it never collides with the unrelated
`keras-resnet` 0.2.0 on PyPI, which also installs a `keras_resnet` package (see README.md).
"""

from pathlib import Path

from setuptools import find_packages, setup

# The trainers' own packages are dependencies: `pip install -e .` gives trainers that run.
# importlib_resources: tensorflow-datasets 4.9 imports it to download, declaring it for
# Python < 3.9 only.
REQUIRES = ["keras>=3.6", "tensorflow>=2.16", "numpy>=1.26", "absl-py>=2.0", "h5py>=3.10",
            "safetensors>=0.4",
            "tensorflow-datasets>=4.9", "importlib_resources>=5", "tensorboard>=2.16"]
TRAINING = ["matplotlib>=3.7"]  # the figures (training/plot_curves.py, layer_responses.py)
SERVING = ["tensorflow-serving-api>=2.16", "grpcio>=1.60"]
JAX = ["jax>=0.4.30"]
TEST = ["pytest>=8", "pytest-xdist>=3", "scikit-image>=0.22", "pillow>=10", "ruff>=0.17"]

setup(
    name="keras-resnet-he2015",
    version="0.1.0",
    description='ResNets of He et al., "Deep Residual Learning for Image Recognition", for Keras 3',
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",  # LICENSE
    python_requires=">=3.10",
    packages=find_packages(include=["keras_resnet", "keras_resnet.*"]),
    package_data={"keras_resnet": ["data/*.json"]},
    install_requires=REQUIRES,
    extras_require={
        "training": TRAINING,
        "serving": SERVING,
        "jax": JAX,
        "test": TRAINING + SERVING + JAX + TEST,
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
