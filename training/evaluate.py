r"""Evaluate a trained ImageNet model: top-1 / top-5 error with the testing of Sec. 3.4 / 4.1.

    python training/evaluate.py --model_dir=gs://bucket/runs/r50 --data_dir=gs://bucket/imagenet \
        --modes=1crop,10crop,multiscale

1crop: shorter side 256, centre 224 crop. 10crop: the 4 corners and centre of the 256-image and
their flips, softmax averaged. multiscale: the whole image, fully convolutional, at shorter sides
{224, 256, 384, 480, 640}, scores averaged. All lengths scale with the model's image size / 224.
Reads model.keras and metadata.json from --model_dir (or a .keras file given by --model_path with
--image_size); writes the errors to evaluation.json (or --output).

Pretrained weights (keras_resnet.pretrained), with the preprocessing they expect, on ImageNet
data whose classes are synsets (TFRecord shards, TFDS, or a folder: val/<synset>/*, any subset of
the 1000 classes; without a train/ folder give --data_source=folder):

    python training/evaluate.py --model=resnet50 --weights=imagenet --data_source=folder \
        --data_dir=data/imagenet --modes=1crop --output=r50_imagenet.json
"""

from __future__ import annotations

import json
import os
import sys

# First: keras_resnet.runtime sets TensorFlow's oneDNN default before TensorFlow loads.
import keras_resnet

# isort: split
import keras
import tensorflow as tf
from absl import app, flags

from keras_resnet.preprocessing import imagenet_classes
from keras_resnet.training import evaluation
from keras_resnet.training import imagenet_input as data
from keras_resnet.training.flags import define_weights_flags

flags.DEFINE_string("model_dir", None, "A training model_dir (model.keras, metadata.json).")
flags.DEFINE_string(
    "model_path", None, "A .keras file (instead of --model_dir); needs --image_size."
)
flags.DEFINE_string("model", None, "A registered ImageNet net, with --weights.")
define_weights_flags()
flags.DEFINE_string(
    "data_dir", None, "TFRecord shards, image folder or TFDS data dir.", required=True
)
flags.DEFINE_enum("data_source", "auto", list(data.SOURCES), "Data source (auto: detect).")
flags.DEFINE_string("tfds_manual_dir", None, "TFDS manual download dir.")
flags.DEFINE_list("modes", list(evaluation.MODES), f"Any of {', '.join(evaluation.MODES)}.")
flags.DEFINE_integer("image_size", None, "Crop size the model was trained at (default: "
                     "metadata.json; with --weights: 224).", lower_bound=32)
flags.DEFINE_integer("batch_size", 32, "Images per batch (10crop runs 10x as many crops).",
                     lower_bound=1)
flags.DEFINE_integer("max_images", None, "Evaluate only the first N validation images.",
                     lower_bound=1)
flags.DEFINE_string("output", None, "Results JSON (default: evaluation.json beside the model).")
FLAGS = flags.FLAGS


def main(argv: list[str]) -> int:
    del argv
    try:
        return run()
    except (FileNotFoundError, ValueError, ImportError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def _load() -> tuple[keras.Model, dict, str]:
    """The model, its metadata ({} with --model_path) and the default output directory."""
    if sum(bool(v) for v in (FLAGS.model_dir, FLAGS.model_path, FLAGS.model)) != 1:
        raise ValueError("give exactly one of --model_dir (a training model_dir), --model_path "
                         "(a .keras file) and --model with --weights (pretrained weights).")
    if bool(FLAGS.model) != bool(FLAGS.weights):
        raise ValueError("--model and --weights go together: a registered ImageNet net and its "
                         "pretrained weights.")
    if FLAGS.model:
        model = keras_resnet.raw_pixel_model(FLAGS.model, FLAGS.weights, FLAGS.preprocessing,
                                             FLAGS.image_size,
                                             bottleneck_stride=FLAGS.bottleneck_stride)
        metadata = {"image_size": list(model.input_shape[1:3]),
                    "class_names": imagenet_classes()["synsets"]}
        return model, metadata, "."
    if FLAGS.model_path:
        if not FLAGS.image_size:
            raise ValueError(
                f"--model_path={FLAGS.model_path} needs --image_size (no metadata.json)."
            )
        return keras.saving.load_model(FLAGS.model_path), {}, os.path.dirname(FLAGS.model_path)
    model_path = os.path.join(FLAGS.model_dir, "model.keras")
    metadata_path = os.path.join(FLAGS.model_dir, "metadata.json")
    for path in (model_path, metadata_path):
        if not tf.io.gfile.exists(path):
            raise FileNotFoundError(f"--model_dir={FLAGS.model_dir}: no {os.path.basename(path)} "
                                    f"({path}); is the training run finished?")
    with tf.io.gfile.GFile(metadata_path) as f:
        metadata = json.load(f)
    return keras.saving.load_model(model_path), metadata, FLAGS.model_dir


def run() -> int:
    evaluation.check_modes(FLAGS.modes)
    model, metadata, out_dir = _load()
    size = FLAGS.image_size or metadata["image_size"][0]
    trained = metadata.get("class_names")
    source = FLAGS.data_source
    if source == "auto":
        source = data.detect_source(FLAGS.data_dir)
    if FLAGS.model and source == "folder":
        # val/<synset>/ folders label by the 1000-class table; any subset of it, without train/.
        info = data.DataInfo("folder", FLAGS.data_dir, tuple(trained), {})
    else:
        info = data.describe_data(FLAGS.data_dir, source, FLAGS.tfds_manual_dir)
    if trained is not None and list(trained) != list(info.class_names):
        raise ValueError(
            f"--data_dir={FLAGS.data_dir}: its {info.num_classes} classes differ from the "
            f"{len(trained)} the model was trained on (metadata.json class_names)."
        )
    examples = data.encoded_examples(
        info, "validation", False, tfds_manual_dir=FLAGS.tfds_manual_dir
    )
    if FLAGS.max_images:
        examples = examples.take(FLAGS.max_images)
    results = evaluation.evaluate(model, examples, size, FLAGS.modes,
                                  resize=metadata.get("eval_resize"), batch_size=FLAGS.batch_size)
    output = FLAGS.output or os.path.join(out_dir, evaluation.RESULTS_FILE)
    evaluation.write_results(output, results)
    for mode, result in results.items():
        print(f"{mode:10s} top-1 error {100 * result['top1_error']:6.2f}%  top-5 error "
              f"{100 * result['top5_error']:6.2f}%  ({result['images']} images)")
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    app.run(main)
