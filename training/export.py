"""Export a model as a TF Serving SavedModel with an image-bytes signature.

    python training/export.py --model_dir=runs/resnet20_cifar10
    python training/export.py --keras_file=path/model.keras --export_base=saved_models/mynet
    python training/export.py --model=resnet18 --image_size=64      # untrained, for smoke tests
    python training/export.py --model=resnet50 --weights=imagenet   # the paper's released model
    python training/export.py --model=resnet50 --weights=r50.safetensors --bottleneck_stride=3x3

Writes `<export_base>/<next version>/` (default export_base: saved_models/<model>_<dataset>), then
regenerates `models.config` beside it for TF Serving's `--model_config_file`. Always runs on the
TensorFlow backend; a model trained under JAX loads from its `.keras` file. With --weights the
served model applies the preprocessing of its weights (keras_resnet.preprocessing) to the decoded
1-crop pixels. Every path may
be a tf.io.gfile path (gs://...): a run trained into a bucket exports from and to it.
"""

from __future__ import annotations

import os
import sys

os.environ["KERAS_BACKEND"] = "tensorflow"  # a SavedModel is a TensorFlow graph

from absl import app, flags  # noqa: E402

from keras_resnet import export  # noqa: E402
from keras_resnet.training.flags import define_weights_flags  # noqa: E402

flags.DEFINE_string("model_dir", None,
                    "A trainer's finished model_dir (model.keras, metadata.json).")
flags.DEFINE_string("keras_file", None,
                    "A .keras file (metadata.json beside it is used if present).")
flags.DEFINE_string("model", None, "A registered model name, exported untrained (random weights) "
                    "or with --weights.")
define_weights_flags()
flags.DEFINE_integer("image_size", None, "With --model: square input size (default: the net's).",
                     lower_bound=1)
flags.DEFINE_integer("classes", None, "With --model: number of classes (default: the net's).",
                     lower_bound=1)
flags.DEFINE_string("export_base", None, "Directory of versions, <export_base>/<version>/ "
                    "(default: saved_models/<model>_<dataset>, or saved_models/<model>).")
flags.DEFINE_integer("top_k", export.DEFAULT_TOP_K, "Top classes returned by serving_default.",
                     lower_bound=1)
flags.DEFINE_integer("max_image_pixels", export.DEFAULT_MAX_IMAGE_PIXELS,
                     "Larger images are refused with InvalidArgument, before decoding.",
                     lower_bound=1)
flags.DEFINE_bool("fold_bn", True, "Serve the net with its batch normalization folded into the "
                  "convolutions (keras_resnet.folding): the same function, faster.")
flags.DEFINE_bool("models_config", True, "Regenerate models.config in export_base's parent.")
flags.DEFINE_string("serving_base_path", "/models", "Where the server sees export_base's parent "
                    "(/models: the TF Serving container with saved_models/ mounted there).")
flags.register_multi_flags_validator(
    ["model_dir", "keras_file", "model"],
    lambda values: sum(v is not None for v in values.values()) == 1,
    message="Give exactly one of --model_dir, --keras_file, --model.")
FLAGS = flags.FLAGS


def main(argv: list[str]) -> None:
    del argv
    if FLAGS.model is None and (FLAGS.image_size or FLAGS.classes or FLAGS.weights):
        raise app.UsageError("--image_size, --classes and --weights apply to --model only.")
    if FLAGS.weights is None and (FLAGS.preprocessing or FLAGS.bottleneck_stride != "1x1"):
        raise app.UsageError("--preprocessing and --bottleneck_stride apply to --weights only.")
    if FLAGS.weights is not None and FLAGS.classes:
        raise app.UsageError("--classes does not apply to --weights: ImageNet has 1000 classes.")
    try:
        if FLAGS.model_dir is not None:
            model, metadata = export.load_model_dir(FLAGS.model_dir)
        elif FLAGS.keras_file is not None:
            model, metadata = export.load_keras_file(FLAGS.keras_file)
        elif FLAGS.weights is not None:
            model, metadata = export.pretrained_model(FLAGS.model, FLAGS.weights, FLAGS.image_size,
                                                      FLAGS.bottleneck_stride, FLAGS.preprocessing)
        else:
            model, metadata = export.untrained_model(FLAGS.model, FLAGS.image_size, FLAGS.classes)
        name = "_".join(str(v) for v in (metadata["model"], metadata.get("dataset")) if v)
        export_base = (FLAGS.export_base or os.path.join("saved_models", name)).rstrip("/")
        version_dir = export.export_saved_model(model, metadata, export_base, FLAGS.top_k,
                                                FLAGS.max_image_pixels, FLAGS.fold_bn)
    except (ValueError, FileNotFoundError, ImportError) as error:
        sys.exit(f"export: {error}")
    print(f"Exported {metadata['model']} to {version_dir}")
    if FLAGS.models_config:
        config = export.write_models_config(os.path.dirname(export_base) or ".",
                                            FLAGS.serving_base_path)
        print(f"Wrote {config}")


if __name__ == "__main__":
    app.run(main)
