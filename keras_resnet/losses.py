"""Losses registered with Keras, so that a trained `model.keras` loads wherever keras_resnet is
imported."""

from __future__ import annotations

import keras


def check_label_smoothing(value: float) -> None:
    """Raise ValueError unless 0 <= value < 1 (the one check of the range: the loss, the
    trainers' --label_smoothing)."""
    if not 0.0 <= value < 1.0:
        raise ValueError(f"label_smoothing={value!r}; allowed: 0 <= label_smoothing < 1.")


@keras.saving.register_keras_serializable(package="keras_resnet")
class SparseLabelSmoothingCrossentropy(keras.losses.Loss):
    """Cross-entropy of integer labels smoothed towards the uniform distribution over the K
    classes, on probabilities: (1 - e) * (-log p_y) + e * mean_k(-log p_k) (Szegedy et al. 2016),
    the same as CategoricalCrossentropy(label_smoothing=e) on one-hot labels."""

    def __init__(
        self,
        label_smoothing: float = 0.0,
        name: str = "sparse_label_smoothing_crossentropy",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        check_label_smoothing(label_smoothing)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        y_true = keras.ops.cast(y_true, "int32")
        if len(y_true.shape) == len(y_pred.shape):
            y_true = keras.ops.squeeze(y_true, axis=-1)
        one_hot = keras.ops.one_hot(y_true, keras.ops.shape(y_pred)[-1], dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(one_hot, y_pred,
                                                     label_smoothing=self.label_smoothing)

    def get_config(self) -> dict:
        return dict(super().get_config(), label_smoothing=self.label_smoothing)
