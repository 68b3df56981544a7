"""Train the CIFAR nets of He et al. 2015, Sec. 4.2, with the paper's recipe.

    python training/cifar10.py --model=resnet110 --strategy=mirrored --data_source=tfds \
        --model_dir=runs/r110

Defaults: batch 128, SGD momentum 0.9, weight decay 1e-4, lr 0.1 divided by 10 at 32k and 48k
iterations, 64k iterations, a 45k/5k train/validation split, 4-pixel pad + random crop + flip,
per-pixel mean subtraction (stored in the model), warm-up at 0.01 for ResNet-110 and deeper until
the training error is below 80%. Rerunning the same command resumes; a finished run is not redone;
a rerun with other defining flags is refused (keras_resnet.training.resume).
"""

from __future__ import annotations

# First: keras_resnet.runtime sets TensorFlow's oneDNN default before TensorFlow loads.
import keras_resnet

# isort: split
import keras
from absl import app, flags

from keras_resnet.training import cifar_data, distribute, schedules, trainer
from keras_resnet.training.errors import UsageError
from keras_resnet.training.flags import define_common_flags, main, train_config

CIFAR_MODELS = [m for m in keras_resnet.list_models() if keras_resnet.get_spec(m).family == "cifar"]
define_common_flags(default_model="resnet20", model_choices=CIFAR_MODELS)
flags.DEFINE_enum("dataset", "cifar10", list(cifar_data.DATASETS), "Dataset.")
flags.DEFINE_enum("data_source", "files", list(cifar_data.SOURCES),
                  "tfds: TFDS from --data_dir; files: the original release files; folder: "
                  "DIR/{train,test}/<class>/*.jpg|*.png.")
flags.DEFINE_string("data_dir", None, "Data location (Fashion-MNIST files default to "
                    f"{cifar_data.FASHION_MNIST_DIR}).")
flags.DEFINE_integer("validation_size", 5000, "Training images held out for validation (Sec. 4.2: "
                     "45k/5k).", lower_bound=0)
flags.DEFINE_integer("validation_per_class", None, "Hold out this many training images of each "
                     "class for validation instead (a class-balanced --validation_size).",
                     lower_bound=0)
flags.DEFINE_bool("train_on_all", False, "Train on all training images (no validation split).")
flags.DEFINE_list("lr_boundaries", ["32000", "48000"], "Steps at which the lr is divided by 10. "
                  "If not given and the run is not 64k steps, scaled to 1/2 and 3/4 of the run.")
flags.DEFINE_enum("warmup", "auto", ["auto", "on", "off"], "Warm up at --warmup_lr until the "
                  "training error is below 80% (auto: on for depth >= 110, Sec. 4.2).")
flags.DEFINE_float("warmup_lr", 0.01, "Warm-up learning rate.", lower_bound=0.0)
flags.DEFINE_bool("augment", True, "Pad 4 / random crop / horizontal flip (Sec. 4.2).")
flags.DEFINE_bool("pad_to_32", True, "Zero-pad 28x28 Fashion-MNIST images to 32x32.")
flags.DEFINE_integer("max_train_examples", None, "Use a random subset of the training images.",
                     lower_bound=1)
flags.DEFINE_integer("max_test_examples", None, "Use a random subset of the test images.",
                     lower_bound=1)
FLAGS = flags.FLAGS


def train() -> int:
    distribution = distribute.get_distribution(FLAGS.strategy, FLAGS.num_gpus, FLAGS.tpu,
                                               FLAGS.num_cpu_devices)
    distribute.check_global_batch(FLAGS.batch_size, distribution.num_replicas, FLAGS.strategy)
    data = cifar_data.load(FLAGS.dataset, FLAGS.data_source, FLAGS.data_dir,
                           FLAGS.max_train_examples, FLAGS.max_test_examples)
    x_train, x_test = data.x_train, data.x_test
    padded_from = None  # the native size of images zero-padded to 32x32, for export
    if FLAGS.pad_to_32 and x_train.shape[1] < 32:
        padded_from = [int(v) for v in x_train.shape[1:3]]
        x_train, x_test = cifar_data.pad_to(x_train, 32), cifar_data.pad_to(x_test, 32)
    split_choices = (["--train_on_all"] if FLAGS.train_on_all else []) + [
        f"--{name}={FLAGS[name].value}" for name in ("validation_size", "validation_per_class")
        if FLAGS[name].present]
    if len(split_choices) > 1:  # each chooses the validation split (--train_on_all: none)
        raise UsageError(f"{' and '.join(split_choices)}: give one of them.")
    if FLAGS.train_on_all:
        x_train, y_train, x_val, y_val = x_train, data.y_train, None, None
    elif FLAGS.validation_per_class is not None:
        x_train, y_train, x_val, y_val = cifar_data.split_validation_per_class(
            x_train, data.y_train, FLAGS.validation_per_class)
    else:
        x_train, y_train, x_val, y_val = cifar_data.split_validation(
            x_train, data.y_train, FLAGS.validation_size)
    mean = cifar_data.mean_image(x_train)
    fill = cifar_data.border_fill(FLAGS.dataset, mean)
    batch = FLAGS.batch_size
    trainer.check_batch_size(batch, len(x_train))
    steps_per_epoch = len(x_train) // batch
    total_steps = schedules.steps_for(FLAGS.train_steps, FLAGS.epochs, steps_per_epoch,
                                      schedules.CIFAR_TOTAL_STEPS)
    boundaries = schedules.parse_boundaries("lr_boundaries", FLAGS.lr_boundaries)
    if not FLAGS["lr_boundaries"].present and total_steps != schedules.CIFAR_TOTAL_STEPS:
        boundaries = schedules.scaled_boundaries(
            boundaries, total_steps, schedules.CIFAR_TOTAL_STEPS
        )
    schedule = schedules.cifar_schedule(FLAGS.lr, boundaries)
    spec = keras_resnet.get_spec(FLAGS.model)
    warmup = None
    if schedules.use_warmup(FLAGS.warmup, spec.depth):
        warmup = schedules.WarmupUntilError(FLAGS.warmup_lr, max_steps=max(total_steps // 16, 1))

    image_shape = x_train.shape[1:]

    def build_model():
        inputs = keras.Input(shape=image_shape, name="image", dtype="float32")
        x = keras_resnet.layers.SubtractMean(mean, name="subtract_mean")(inputs)
        return keras_resnet.get_model(FLAGS.model, input_tensor=x, classes=len(data.class_names),
                                      weights=None, weight_decay=FLAGS.weight_decay)

    seed = FLAGS.seed

    def eval_data(x, y):
        return as_eval_data(x, y, FLAGS.eval_batch_size, distribution.name)

    if distribute.keras_backend() == "tensorflow":
        def train_input(first_step, num_steps):
            return cifar_data.tf_train_dataset(x_train, y_train, batch, seed, first_step,
                                               num_steps, FLAGS.augment, fill)
    else:
        def train_input(first_step, num_steps):
            return cifar_data.numpy_train_sequence(x_train, y_train, batch, seed, first_step,
                                                   num_steps, FLAGS.augment, fill)

    config = train_config(
        total_steps=total_steps, steps_per_epoch=steps_per_epoch, global_batch=batch,
        schedule=schedule, warmup=warmup,
        metadata={"model": FLAGS.model, "dataset": FLAGS.dataset,
                  "class_names": data.class_names, "image_size": list(image_shape[:2]),
                  "channels": int(image_shape[2]), "padded_from": padded_from,
                  "eval_resize": None, "mean": "pixel",
                  "augment_border": "black" if fill is None else "mean image",
                  "data_source": FLAGS.data_source, "train_examples": len(x_train),
                  "validation_examples": 0 if x_val is None else len(x_val),
                  "test_examples": len(x_test)},
    )
    train_data = trainer.TrainData(
        train=train_input,
        num_train_examples=len(x_train),
        validation=None if x_val is None else eval_data(x_val.astype("float32"), y_val),
        test=eval_data(x_test.astype("float32"), data.y_test),
        eval_batch_size=FLAGS.eval_batch_size,
    )
    trainer.run(config, distribution, build_model, train_data)
    return 0


def as_eval_data(x, y, batch: int, strategy: str):
    """Validation / test data for the trainer: on TensorFlow, for strategies within one host, a
    tf.data pipeline without the autotuner's teardown wait (cifar_data.tf_data_options); else the
    arrays, which Keras shards across the workers of multi_worker_mirrored / TPU hosts itself."""
    if distribute.keras_backend() == "tensorflow" and strategy in (
        "default",
        "one_device",
        "mirrored",
    ):
        return cifar_data.tf_eval_dataset(x, y, batch)
    return x, y


if __name__ == "__main__":
    app.run(main(train))
