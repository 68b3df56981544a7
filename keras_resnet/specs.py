"""The architectures as data: paper Table 1 (ImageNet) and Sec. 4.2 (CIFAR-10).

Adding a depth is one line in `IMAGENET_DEPTHS` or `CIFAR_DEPTHS`.
"""

from __future__ import annotations

import dataclasses

# Table 1: depth -> (block type, blocks per stage conv2_x .. conv5_x).
IMAGENET_DEPTHS: dict[int, tuple[str, tuple[int, ...]]] = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}
IMAGENET_WIDTHS = (64, 128, 256, 512)

# Sec. 4.2: 6n+2 layers, n basic blocks in each of three stages of 16/32/64 filters.
CIFAR_DEPTHS: dict[int, int] = {20: 3, 32: 5, 44: 7, 56: 9, 110: 18, 1202: 200}
CIFAR_WIDTHS = (16, 32, 64)
CIFAR_PLAIN_DEPTHS = (20, 32, 44, 56, 110)

BOTTLENECK_EXPANSION = 4  # Fig. 5 right: 1x1 64, 3x3 64, 1x1 256.


@dataclasses.dataclass(frozen=True)
class NetSpec:
    """One network of the paper: its family, block type and stage layout."""

    name: str
    family: str  # "imagenet" (Table 1) or "cifar" (Sec. 4.2)
    depth: int
    plain: bool
    block: str  # "basic" (two 3x3) or "bottleneck" (1x1, 3x3, 1x1)
    repeats: tuple[int, ...]
    widths: tuple[int, ...]

    @property
    def constructor_name(self) -> str:
        """The public constructor's name, e.g. "ResNet50", "Plain20"."""
        return f"{'Plain' if self.plain else 'ResNet'}{self.depth}"

    @property
    def default_shortcut(self) -> str | None:
        """Option B for ImageNet (Sec. 3.3), option A for CIFAR (Sec. 4.2), none for plain nets."""
        if self.plain:
            return None
        return "A" if self.family == "cifar" else "B"

    @property
    def default_input_shape(self) -> tuple[int, int, int]:
        return (32, 32, 3) if self.family == "cifar" else (224, 224, 3)

    @property
    def default_classes(self) -> int:
        return 10 if self.family == "cifar" else 1000

    @property
    def total_stride(self) -> int:
        """Downsampling factor from input to the last stage's feature map."""
        stem = 4 if self.family == "imagenet" else 1  # 7x7/2 conv and 3x3/2 max-pool
        return stem * 2 ** (len(self.repeats) - 1)


def _imagenet(depth: int, plain: bool) -> NetSpec:
    block, repeats = IMAGENET_DEPTHS[depth]
    prefix = "plain" if plain else "resnet"
    return NetSpec(f"{prefix}{depth}", "imagenet", depth, plain, block, repeats, IMAGENET_WIDTHS)


def _cifar(depth: int, plain: bool) -> NetSpec:
    n = CIFAR_DEPTHS[depth]
    prefix = "plain" if plain else "resnet"
    return NetSpec(f"{prefix}{depth}", "cifar", depth, plain, "basic", (n, n, n), CIFAR_WIDTHS)


SPECS: dict[str, NetSpec] = {
    spec.name: spec
    for spec in (
        *(_imagenet(d, plain) for plain in (False, True) for d in IMAGENET_DEPTHS),
        *(_cifar(d, False) for d in CIFAR_DEPTHS),
        *(_cifar(d, True) for d in CIFAR_PLAIN_DEPTHS),
    )
}


def get_spec(name: str) -> NetSpec:
    """The spec of a registered network, by its lower-case name (e.g. "resnet56")."""
    key = name.lower() if isinstance(name, str) else name
    if key not in SPECS:
        raise ValueError(
            f"Unknown model name {name!r}. "
            f"Available models: {', '.join(sorted(SPECS, key=_order))}."
        )
    return SPECS[key]


def _order(name: str) -> tuple[bool, bool, int]:
    spec = SPECS[name]
    return (spec.family == "cifar", spec.plain, spec.depth)


def list_models() -> list[str]:
    """Names of all registered networks: ImageNet, then CIFAR; residual, then plain; by depth."""
    return sorted(SPECS, key=_order)
