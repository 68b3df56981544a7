"""Speed benchmarks of keras_resnet; figures in docs/performance.md, records in results/.

train_throughput (the command line) runs contenders from `contenders` in `workers` processes,
alternated round by round by `runner` and `sections`, checked against `goals`, printed by
`report`. op_profile, onednn_kernels, bfloat16_accuracy, input_pipeline and
torch_start_of_training are scripts of their own.
"""
