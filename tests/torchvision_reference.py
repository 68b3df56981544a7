"""torchvision's ResNets with random weights, as reference for the loading tests.

Run under a Python that has PyTorch and torchvision (Debian's /usr/bin/python3), not the venv:

    python3 tests/torchvision_reference.py OUT_DIR IMAGES.npy resnet18 resnet50

For each net: random weights (seeded) with randomised BN statistics and a non-zero fc bias,
saved as OUT_DIR/NET.pth (`torch.save` of the state dict) and OUT_DIR/NET.npz (the same tensors,
for writing .safetensors elsewhere), and torchvision's logits for the uint8 RGB photos of
IMAGES.npy (N, H, W, 3), normalised the torchvision way, in OUT_DIR/NET.logits.npy.
"""

import sys
from pathlib import Path

import numpy as np
import torch
import torchvision


def randomised(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0.0, 0.1)
                module.running_mean.normal_(0.0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
        model.fc.bias.normal_(0.0, 0.1)
    return model.eval()


def main(out: Path, images: Path, names: list[str]) -> None:
    pixels = torch.from_numpy(np.load(images)).permute(0, 3, 1, 2).float() / 255
    normalise = torchvision.transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    for name in names:
        model = randomised(name)
        state = model.state_dict()
        torch.save(state, out / f"{name}.pth")
        np.savez(out / f"{name}.npz", **{k: v.numpy() for k, v in state.items()})
        with torch.no_grad():
            np.save(out / f"{name}.logits.npy", model(normalise(pixels)).numpy())


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:])
