"""Fig. 7 of He et al. 2015: std of each 3x3 layer's response (after BN, before ReLU) of trained
models, in network order and sorted, on test images:

    python training/layer_responses.py --model_dirs=runs/plain20,runs/resnet20 \
        --data_source=folder --data_dir=data/cifar10-jpeg --output=fig7

writes fig7.png and fig7.csv. model_dirs are read through tf.io.gfile (gs:// works).
"""

from __future__ import annotations

import os
import sys

from absl import app, flags

from keras_resnet.training import cifar_data, figures, files

flags.DEFINE_list("model_dirs", None, "Comma-separated model_dirs with model.keras and "
                  "metadata.json.", required=True)
flags.DEFINE_list("labels", None, "Labels, one per model_dir (default: the model names).")
flags.DEFINE_enum("data_source", "files", list(cifar_data.SOURCES), "Source of the test images.")
flags.DEFINE_string("data_dir", None, "Data location (as for training/cifar10.py).")
flags.DEFINE_integer("num_images", 1000, "Test images to measure on.", lower_bound=1)
flags.DEFINE_string("output", "layer_responses", "Output path without extension (.png, .csv).")
FLAGS = flags.FLAGS


def main(argv: list[str]) -> int:
    del argv
    import keras

    labels = FLAGS.labels or [figures.run_label(d) for d in FLAGS.model_dirs]
    if len(labels) != len(FLAGS.model_dirs):
        print(
            f"error: {len(labels)} --labels for {len(FLAGS.model_dirs)} --model_dirs",
            file=sys.stderr,
        )
        return 2
    responses = {}
    try:
        for model_dir, label in zip(FLAGS.model_dirs, labels):
            metadata_path = os.path.join(model_dir, "metadata.json")
            metadata = files.read_json(metadata_path)
            if metadata is None:
                raise cifar_data.DataError(f"{metadata_path} is missing or unreadable: not a "
                                           f"trainer model_dir.")
            data = cifar_data.load(metadata["dataset"], FLAGS.data_source, FLAGS.data_dir,
                                   max_test=FLAGS.num_images)
            images = data.x_test
            size = metadata["image_size"][0]
            if images.shape[1] < size:
                images = cifar_data.pad_to(images, size)
            model = keras.models.load_model(os.path.join(model_dir, "model.keras"))
            responses[label] = figures.layer_responses(model, images)
    except (cifar_data.DataError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    figures.write_layer_responses(responses, FLAGS.output + ".png", FLAGS.output + ".csv")
    print(f"wrote {FLAGS.output}.png and {FLAGS.output}.csv")
    return 0


if __name__ == "__main__":
    app.run(main)
