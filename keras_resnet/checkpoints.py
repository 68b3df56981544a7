"""Readers of other libraries' ResNet weight files, as the weights of this package's layers.

- keras.applications' ResNet50/101/152 `.h5` files (the Caffe models of He et al. converted by
  Keras; the legacy Keras HDF5 weights layout of `keras/src/legacy/saving/legacy_h5_format.py`).
  Their layer names are ours; their convolutions carry biases and their BN uses epsilon
  1.001e-5. Both fold exactly into our bias-free convolutions and epsilon-1e-5 BN: a bias b
  before a BN is BN's mean lowered by b, and the epsilon difference moves into the variance.
- torchvision / timm ResNet state dicts (`conv1`, `bn1`, `layer1.0.conv1`, ..., `fc`), read from
  `.safetensors` (the `safetensors` package, no PyTorch) or `.pth` / `.pt` / `.bin` (PyTorch).
"""

from __future__ import annotations

import dataclasses
import os
import re

import h5py
import numpy as np

from keras_resnet.blocks import BN_EPSILON

KERAS_APPLICATIONS_BN_EPSILON = 1.001e-5  # keras/src/applications/resnet.py
STATE_DICT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")

# torchvision's names of a BN's tensors -> Keras's.
_BN_TENSORS = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean",
               "running_var": "moving_variance"}
_STEM_OR_FC = re.compile(r"(?P<module>conv1|bn1|fc)\.(?P<tensor>\w+)")
_UNIT = re.compile(r"layer(?P<stage>\d+)\.(?P<block>\d+)\."
                   r"(?:(?P<kind>conv|bn)(?P<index>\d)|downsample\.(?P<down>[01]))"
                   r"\.(?P<tensor>\w+)")


@dataclasses.dataclass
class Checkpoint:
    """Weights of another library's file as {(our layer name, our weight name): value}.

    `keys` names each value's tensor in the file and its shape there (for errors); `stride_in` is
    where the file's bottleneck units downsample: "1x1" (the paper's layout) or "3x3" (ResNet
    v1.5).
    """

    kind: str
    stride_in: str
    tensors: dict[tuple[str, str], np.ndarray] = dataclasses.field(default_factory=dict)
    keys: dict[tuple[str, str], str] = dataclasses.field(default_factory=dict)

    def add(self, layer: str, weight: str, value: np.ndarray, key: str, shape: tuple) -> None:
        self.tensors[layer, weight] = np.asarray(value, np.float32)
        self.keys[layer, weight] = f"{key!r} {tuple(shape)}"


# ----------------------------------------------------------------------------------------------
# keras.applications (legacy Keras HDF5 weights)


def _weights_group(file: h5py.File) -> h5py.Group | None:
    """The group holding `layer_names` (the file's root, or `model_weights` of a whole-model
    save), or None when the file is not in the legacy layout."""
    for group in (file, file.get("model_weights")):
        if isinstance(group, h5py.Group) and _names(group, "layer_names"):
            return group
    return None


def _names(group: h5py.Group, attribute: str) -> list[str]:
    """A list attribute of the legacy layout, whole or in chunks `name0`, `name1`, ..."""
    if attribute in group.attrs:
        chunks = [group.attrs[attribute]]
    else:
        chunks = []
        while f"{attribute}{len(chunks)}" in group.attrs:
            chunks.append(group.attrs[f"{attribute}{len(chunks)}"])
    return [n.decode("utf8") if isinstance(n, bytes) else str(n) for c in chunks for n in c]


def is_keras_applications_h5(file: h5py.File) -> bool:
    """Whether an open HDF5 file is in the legacy Keras weights layout (as keras.applications
    publishes its weights), as opposed to Keras 3's `.weights.h5`."""
    return _weights_group(file) is not None


def read_keras_applications_h5(path: str | os.PathLike) -> Checkpoint:
    """A keras.applications ResNet `.h5` as our layers' weights, conv biases folded into BN."""
    checkpoint = Checkpoint("keras.applications ResNet .h5", "1x1")
    with h5py.File(path, "r") as file:
        group = _weights_group(file)
        if group is None:
            raise ValueError("it is not in the legacy Keras HDF5 weights layout (no layer_names)")
        for layer in _names(group, "layer_names"):
            for name in _names(group[layer], "weight_names"):
                weight = name.split("/")[-1].split(":")[0]  # "conv1_conv/kernel:0" -> "kernel"
                value = group[layer][name][()]
                checkpoint.add(layer, weight, value, f"{layer}/{name}", value.shape)
    _fold_conv_biases(checkpoint)
    return checkpoint


def _fold_conv_biases(checkpoint: Checkpoint) -> None:
    """BN(conv(x) + b) with mean m is BN(conv(x)) with mean m - b; epsilon 1.001e-5 with
    variance v is epsilon 1e-5 with variance v + 1e-8 (both exact, up to float32 rounding)."""
    tensors = checkpoint.tensors
    for (layer, weight) in list(tensors):
        if weight == "moving_variance":
            variance = tensors[layer, weight].astype(np.float64)
            tensors[layer, weight] = (variance + KERAS_APPLICATIONS_BN_EPSILON
                                      - BN_EPSILON).astype(np.float32)
        if weight != "bias" or not layer.endswith("_conv"):
            continue
        bn = layer[:-len("_conv")] + "_bn"
        if (bn, "moving_mean") not in tensors:
            raise ValueError(f"convolution {layer!r} has a bias but no BN {bn!r} follows it "
                             f"in the file")
        bias = tensors.pop((layer, weight))
        checkpoint.keys.pop((layer, weight))
        tensors[bn, "moving_mean"] = tensors[bn, "moving_mean"] - bias


# ----------------------------------------------------------------------------------------------
# torchvision / timm state dicts


def _state_dict_target(key: str) -> tuple[str, str | None] | None:
    """(our layer, our weight) of a torchvision / timm ResNet key; weight None for BN's
    `num_batches_tracked`; None for a key that is not one of such a ResNet's tensors."""
    if match := _STEM_OR_FC.fullmatch(key):
        module, tensor = match["module"], match["tensor"]
        if module == "fc":
            fc = {"weight": "kernel", "bias": "bias"}
            return ("predictions", fc[tensor]) if tensor in fc else None
        layer, is_conv = ("conv1_conv", True) if module == "conv1" else ("conv1_bn", False)
    elif match := _UNIT.fullmatch(key):
        unit = f"conv{int(match['stage']) + 1}_block{int(match['block']) + 1}"
        is_conv = match["kind"] == "conv" or match["down"] == "0"
        index = "0" if match["down"] else match["index"]
        layer, tensor = f"{unit}_{index}_{'conv' if is_conv else 'bn'}", match["tensor"]
    else:
        return None
    if is_conv:
        return (layer, "kernel") if tensor == "weight" else None
    if tensor == "num_batches_tracked":
        return layer, None
    return (layer, _BN_TENSORS[tensor]) if tensor in _BN_TENSORS else None


def read_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The tensors of a `.safetensors` file, or of a PyTorch `.pth` / `.pt` / `.bin` file (a
    state dict, possibly under "state_dict" or "model"; read with `weights_only=True`)."""
    path = os.fspath(path)
    if path.endswith(".safetensors"):
        from safetensors.numpy import load_file

        return dict(load_file(path))
    try:
        import torch
    except ImportError as error:
        raise ImportError(
            f"weights={path!r}: reading a PyTorch file needs PyTorch (pip install torch); "
            f"without it, save the state dict as .safetensors instead "
            f"(safetensors.torch.save_file(state_dict, 'model.safetensors'))."
        ) from error
    state = torch.load(path, map_location="cpu", weights_only=True)
    for wrapper in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict):
        raise ValueError(f"it holds a {type(state).__name__}, not a state dict")
    # DLPack, not Tensor.numpy(): works whichever NumPy the installed PyTorch was built against.
    return {key.removeprefix("module."): np.array(np.from_dlpack(value.detach().contiguous()))
            for key, value in state.items() if isinstance(value, torch.Tensor)}


def state_dict_checkpoint(state: dict[str, np.ndarray]) -> Checkpoint:
    """A torchvision / timm ResNet state dict as our layers' weights.

    torchvision's and timm's bottleneck units stride in the 3x3 convolution (ResNet v1.5).
    Raises ValueError naming the first key that is not part of such a ResNet.
    """
    checkpoint = Checkpoint("torchvision / timm state dict", "3x3")
    for key, value in state.items():
        target = _state_dict_target(key)
        if target is None:
            raise ValueError(f"its key {key!r} {tuple(value.shape)} is not a tensor of a "
                             f"torchvision / timm ResNet")
        layer, weight = target
        if weight is None:  # num_batches_tracked
            continue
        shape = value.shape
        if weight == "kernel" and layer != "predictions":
            if value.ndim != 4:
                raise ValueError(f"its key {key!r} {tuple(value.shape)} is not a convolution "
                                 f"kernel (out, in, height, width)")
            value = value.transpose(2, 3, 1, 0)  # OIHW -> HWIO
        elif weight == "kernel":
            value = value.T
        checkpoint.add(layer, weight, value, key, shape)
    return checkpoint
