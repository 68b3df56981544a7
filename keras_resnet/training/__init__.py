"""Training machinery shared by the CIFAR (Sec. 4.2) and ImageNet (Sec. 3.4) trainers.

Modules: `trainer` (the resumable training run), `callbacks` (its Keras callbacks), `files`
(model_dir I/O through tf.io.gfile), `resume` (what a rerun into a model_dir may do), `precision`
(--mixed_precision), `flags` (the trainers' common flags, config and main), `distribute`
(strategies), `schedules` (learning rates and warm-up), `cifar_data` / `imagenet_input` (input),
`evaluation` (the testing modes), `figures` (Fig. 6 and 7).
Submodules are imported explicitly, so importing this package does not import TensorFlow.
"""
