"""Shared test setup: quiet TensorFlow, TensorFlow as the library's users get it, a fresh Keras
session per test."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ONEDNN_CHOSEN_BY_USER = "TF_ENABLE_ONEDNN_OPTS" in os.environ

import keras_resnet  # noqa: E402, F401  first: TensorFlow loads with keras_resnet.runtime's defaults

if not ONEDNN_CHOSEN_BY_USER:  # the scripts that tests start as processes must set it themselves
    os.environ.pop("TF_ENABLE_ONEDNN_OPTS", None)

import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def fresh_keras_session():
    keras.backend.clear_session()
    yield
    keras.config.set_dtype_policy("float32")
