"""Training machinery shared by the CIFAR (Sec. 4.2) and ImageNet (Sec. 3.4) trainers.

Modules: `distribute` (strategies), `schedules` (learning rates and warm-up), `flags` (common absl
flags), `trainer` (the resumable training run), `files` (model_dir I/O through tf.io.gfile),
`resume` (what a rerun into a model_dir may do), `cifar_data` (CIFAR / Fashion-MNIST input).
Submodules are imported explicitly, so importing this package does not import TensorFlow.
"""
