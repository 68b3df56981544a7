r"""Convert pretrained weights once into a Keras `.weights.h5` of one of the networks.

    python -m keras_resnet.convert imagenet resnet50.weights.h5 --model=resnet50
    python -m keras_resnet.convert resnet50-v1.5.safetensors r50.weights.h5 --model=resnet50 \
        --bottleneck_stride=3x3
    python -m keras_resnet.convert resnet18.pth r18.weights.h5 --model=resnet18 --include_top=false

SRC is anything `weights=` takes ("imagenet", a keras.applications `.h5`, a torchvision / timm
`.safetensors` or `.pth`; keras_resnet.pretrained). The output loads with
`keras_resnet.ResNet50(weights="r50.weights.h5", bottleneck_stride=...)` and records the input
preprocessing the weights expect (`keras_resnet.pretrained.preprocessing_mode`).
"""

from __future__ import annotations

import argparse
import sys

from keras_resnet import models, pretrained
from keras_resnet.builder import BOTTLENECK_STRIDE_OPTIONS


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m keras_resnet.convert",
                                     description=__doc__.split("\n\n")[0].strip())
    parser.add_argument("src", help='"imagenet" or the path of a weight file')
    parser.add_argument("dst", help="the .weights.h5 file to write")
    parser.add_argument("--model", required=True, choices=models.list_models(), metavar="NAME",
                        help="registered network, e.g. resnet50")
    parser.add_argument("--bottleneck_stride", default="1x1", choices=BOTTLENECK_STRIDE_OPTIONS,
                        help="3x3 for torchvision / timm ResNet-50/101/152 (default: 1x1)")
    parser.add_argument("--include_top", default="true", choices=("true", "false"),
                        help="keep the 1000-way classifier (default: true)")
    args = parser.parse_args(argv)
    if not args.dst.endswith(".weights.h5"):
        parser.error(f"dst={args.dst!r}: must end in .weights.h5.")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    try:
        model = models.get_model(args.model, weights=args.src,
                                 include_top=args.include_top == "true",
                                 bottleneck_stride=args.bottleneck_stride)
    except (ValueError, ImportError) as error:
        print(f"convert: {error}", file=sys.stderr)
        return 2
    mode = pretrained.preprocessing_mode(args.src)
    pretrained.save_weights(model, args.dst, mode)
    print(f"wrote {args.dst}: {args.model}, bottleneck_stride={args.bottleneck_stride}, "
          f"input preprocessing {mode!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
