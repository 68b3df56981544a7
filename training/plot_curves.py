"""Fig. 6 of He et al. 2015 from finished (or running) trainer model_dirs:

    python training/plot_curves.py --model_dirs=runs/plain20,runs/plain56 --output=fig6.png

Training error dashed, test error bold, against iterations, one PNG.
"""

from __future__ import annotations

import sys

from absl import app, flags

from keras_resnet.training import figures

flags.DEFINE_list("model_dirs", None, "Comma-separated model_dirs written by the trainers.",
                  required=True)
flags.DEFINE_list("labels", None, "Legend labels, one per model_dir (default: the model names).")
flags.DEFINE_string("output", "curves.png", "PNG to write.")
flags.DEFINE_string("title", None, "Figure title.")
FLAGS = flags.FLAGS


def main(argv: list[str]) -> int:
    del argv
    try:
        path = figures.plot_training_curves(
            FLAGS.model_dirs, FLAGS.output, FLAGS.labels, FLAGS.title
        )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    app.run(main)
