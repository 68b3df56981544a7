r"""Train the ImageNet nets of He et al. 2015 (Table 1) with the recipe of Sec. 3.4.

    python training/imagenet.py --strategy=tpu --tpu=my-tpu --data_dir=gs://bucket/imagenet \
        --model=resnet50 --model_dir=gs://bucket/runs/r50

Defaults (Sec. 3.4): batch 256, SGD momentum 0.9, weight decay 1e-4, lr 0.1 divided by 10 at
fixed epochs (--lr_boundary_epochs, the paper's plateaus) for 60e4 iterations at batch 256 (about
120 epochs); scale augmentation (shorter side in [256, 480]), random 224 crop, flip, per-pixel mean
(stored in the model's SubtractMean layer) and PCA colour augmentation. --lr is the lr of a batch of
256, scaled linearly with --batch_size, with a gradual warm-up over --warmup_epochs when the batch
exceeds 256 (Goyal et al. 2017). The class count, the mean and the PCA colour basis come from the
data. ImageNet's validation set serves as the test set (as in the paper's tables): results.json's
test_error is its 1-crop top-1 error, and evaluation.json holds the top-1/top-5 errors of
--eval_modes. Rerunning the same command resumes (with a fresh shuffle of the data).
"""

from __future__ import annotations

import json
import os

# First: keras_resnet.runtime sets TensorFlow's oneDNN default before TensorFlow loads.
import keras_resnet

# isort: split
import keras
from absl import app, flags

from keras_resnet.training import distribute, evaluation, schedules, trainer
from keras_resnet.training import imagenet_input as data
from keras_resnet.training.flags import define_common_flags, main, train_config

IMAGENET_MODELS = [
    m for m in keras_resnet.list_models() if keras_resnet.get_spec(m).family == "imagenet"
]
PAPER_ITERATIONS = 600_000  # Sec. 3.4: "up to 60 x 10^4 iterations" at batch 256
PAPER_BATCH = 256

define_common_flags(default_model="resnet50", model_choices=IMAGENET_MODELS, batch_size=PAPER_BATCH,
                    eval_batch_size=256)
flags.DEFINE_string("data_dir", None, "TFRecord shards (train-*-of-*, validation-*-of-*), an image "
                    "folder (train/<class>/*, val/<class>/*) or a TFDS data dir; gs:// works.",
                    required=True)
flags.DEFINE_enum("data_source", "auto", list(data.SOURCES), "auto: shards if present, else a "
                  "train/ folder, else TFDS imagenet2012.")
flags.DEFINE_string(
    "tfds_manual_dir", None, "TFDS manual download dir holding ILSVRC2012_img_*.tar."
)
flags.DEFINE_integer(
    "image_size",
    data.PAPER_IMAGE_SIZE,
    "Crop size S. Below 224 the paper's lengths "
    "scale by S/224: train shorter side [256, 480]*S/224, 1-crop/10-crop shorter side "
    "256*S/224, multi-scale sides {224, 256, 384, 480, 640}*S/224.",
    lower_bound=32,
)
flags.DEFINE_enum(
    "crop",
    "scale",
    list(data.CROPS),
    "scale: Sec. 3.4 scale augmentation; inception: "
    "random-resized crop (8-100% area, 3/4-4/3 aspect).",
)
flags.DEFINE_enum("mean", "pixel", list(data.MEANS), "Subtract the per-pixel mean image (Sec. 3.4) "
                  "or the per-channel mean.")
flags.DEFINE_float(
    "pca_std", 0.1, "Std of AlexNet's PCA lighting noise (0 disables).", lower_bound=0.0
)
flags.DEFINE_integer("stats_images", 10_000, "Training images sampled for the mean and the PCA.",
                     lower_bound=1)
flags.DEFINE_integer("shuffle_buffer", 10_000, "Examples in the shuffle buffer (per host).",
                     lower_bound=1)
flags.DEFINE_list(
    "lr_boundary_epochs",
    ["30", "60", "90"],
    "Epochs at which the lr is divided by 10 (fixed points for the paper's plateaus).",
)
flags.DEFINE_integer("warmup_epochs", 5, "Goyal et al.'s gradual warm-up from --lr, used when "
                     "the linearly scaled lr (--lr * batch / 256) exceeds --lr.", lower_bound=0)
flags.DEFINE_enum("shortcut", None, ["A", "B", "C"], "Shortcut option (Sec. 3.3; default B).")
flags.DEFINE_bool("zero_init_residual", False, "Zero-init each residual branch's last BN gamma "
                  "(Goyal et al. 2017, for large batches).")
flags.DEFINE_list("eval_modes", ["1crop"], f"Final evaluation on the validation set; any of "
                  f"{', '.join(evaluation.MODES)}.")
FLAGS = flags.FLAGS


def _schedule(steps_per_epoch: int) -> schedules.PiecewiseConstantWarmup:
    epochs = schedules.parse_boundaries("lr_boundary_epochs", FLAGS.lr_boundary_epochs)
    return schedules.goyal_schedule(FLAGS.batch_size, steps_per_epoch, epochs,
                                    base_lr_per_256=FLAGS.lr, warmup_epochs=FLAGS.warmup_epochs)


def train() -> int:
    evaluation.check_modes(FLAGS.eval_modes, "eval_modes", allow_empty=True)
    distribution = distribute.get_distribution(FLAGS.strategy, FLAGS.num_gpus, FLAGS.tpu,
                                               FLAGS.num_cpu_devices)
    distribute.check_global_batch(FLAGS.batch_size, distribution.num_replicas, FLAGS.strategy)
    size = FLAGS.image_size
    info = data.describe_data(FLAGS.data_dir, FLAGS.data_source, FLAGS.tfds_manual_dir,
                              cache_dir=FLAGS.model_dir)
    trainer.check_batch_size(FLAGS.batch_size, info.num_examples["train"], f" of {FLAGS.data_dir}")
    stats = data.training_statistics(info, size, FLAGS.stats_images, FLAGS.model_dir, FLAGS.seed,
                                     FLAGS.tfds_manual_dir)
    steps_per_epoch = data.steps_per_epoch(info.num_examples["train"], FLAGS.batch_size)
    default_steps = round(PAPER_ITERATIONS * PAPER_BATCH / FLAGS.batch_size)
    total_steps = schedules.steps_for(
        FLAGS.train_steps, FLAGS.epochs, steps_per_epoch, default_steps
    )
    augment = data.AugmentConfig(image_size=size, crop=FLAGS.crop, pca_std=FLAGS.pca_std,
                                 shuffle_buffer=FLAGS.shuffle_buffer)

    def dataset(first_step: int, num_steps: int, context=None):
        # A resumed run reshuffles with a seed derived from its first step.
        seed = FLAGS.seed * 1_000_003 + first_step
        examples = data.encoded_examples(info, "train", True, context, seed, FLAGS.tfds_manual_dir)
        if context is None:
            return data.train_dataset(examples, FLAGS.batch_size, augment, stats, seed).take(
                num_steps
            )
        # One pipeline per host feeds that host's replicas one per-replica batch each per step.
        local_replicas = context.num_replicas_in_sync // context.num_input_pipelines
        batch = context.get_per_replica_batch_size(FLAGS.batch_size)
        return data.train_dataset(examples, batch, augment, stats, seed).take(
            num_steps * local_replicas
        )

    def train_input(first_step: int, num_steps: int):
        if distribution.strategy is None:
            return dataset(first_step, num_steps)
        return distribution.strategy.distribute_datasets_from_function(
            lambda context: dataset(first_step, num_steps, context))

    validation = data.center_crop_dataset(
        data.encoded_examples(info, "validation", False, tfds_manual_dir=FLAGS.tfds_manual_dir),
        FLAGS.eval_batch_size, size,
        # Several replicas split a partial last batch unevenly (some get none); TPUs need static
        # shapes. Then the per-epoch test error skips the last < eval_batch_size images; the final
        # evaluation (--eval_modes) counts every image.
        drop_remainder=distribution.num_replicas > 1 or FLAGS.strategy == "tpu")

    def build_model() -> keras.Model:
        inputs = keras.Input(shape=(size, size, 3), name="image", dtype="float32")
        x = keras_resnet.layers.SubtractMean(stats.mean(FLAGS.mean), name="subtract_mean")(inputs)
        return keras_resnet.get_model(FLAGS.model, input_tensor=x, classes=info.num_classes,
                                      weights=None, weight_decay=FLAGS.weight_decay,
                                      shortcut=FLAGS.shortcut,
                                      zero_init_residual=FLAGS.zero_init_residual)

    config = train_config(
        total_steps=total_steps,
        steps_per_epoch=steps_per_epoch,
        global_batch=FLAGS.batch_size,
        schedule=_schedule(steps_per_epoch),
        metadata={
            "model": FLAGS.model,
            "dataset": info.dataset,
            "class_names": list(info.class_names),
            "image_size": [size, size],
            "channels": 3,
            "eval_resize": data.eval_resize(size),
            "mean": FLAGS.mean,
            "data_source": info.source,
            "crop": FLAGS.crop,
            "train_scale_range": list(data.train_scale_range(size)),
            "multiscale_sizes": list(evaluation.multiscale_sizes(size)),
            "train_examples": info.num_examples["train"],
            "validation_examples": info.num_examples["validation"],
        },
    )
    train_data = trainer.TrainData(train=train_input, num_train_examples=info.num_examples["train"],
                                   test=validation, eval_batch_size=FLAGS.eval_batch_size)
    trainer.run(config, distribution, build_model, train_data)
    if distribution.is_chief and FLAGS.eval_modes:
        model = keras.saving.load_model(os.path.join(FLAGS.model_dir, "model.keras"))
        examples = data.encoded_examples(
            info, "validation", False, tfds_manual_dir=FLAGS.tfds_manual_dir
        )
        results = evaluation.evaluate(model, examples, size, FLAGS.eval_modes,
                                      batch_size=FLAGS.eval_batch_size)
        evaluation.write_results(os.path.join(FLAGS.model_dir, evaluation.RESULTS_FILE), results)
        print(json.dumps(results), flush=True)
    return 0


if __name__ == "__main__":
    # ValueError and FileNotFoundError: the ImageNet input's data errors, as one line too.
    app.run(main(train, errors=(FileNotFoundError, ValueError)))
