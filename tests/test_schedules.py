"""The learning-rate schedule and warm-up of Sec. 4.2, and the trainer's step bookkeeping."""

import keras
import numpy as np
import pytest

from keras_resnet.training import schedules
from keras_resnet.training.errors import UsageError
from keras_resnet.training.trainer import plan_segments


def test_cifar_schedule_drops_at_32k_and_48k():
    schedule = schedules.cifar_schedule()
    expected = {0: 0.1, 31999: 0.1, 32000: 0.01, 47999: 0.01, 48000: 0.001, 63999: 0.001}
    for step, lr in expected.items():
        assert schedule.value(step) == pytest.approx(lr)
        assert float(keras.ops.convert_to_numpy(schedule(step))) == pytest.approx(lr)


def test_schedule_round_trips_through_keras():
    schedule = schedules.PiecewiseConstantWarmup([10, 20], [1.0, 0.5, 0.25], warmup_steps=5,
                                                 warmup_lr=0.1, warmup="linear")
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert isinstance(restored, schedules.PiecewiseConstantWarmup)
    for step in (0, 3, 5, 9, 10, 19, 20, 100):
        assert restored.value(step) == pytest.approx(schedule.value(step))


def test_goyal_scaling_and_gradual_warmup():
    schedule = schedules.goyal_schedule(global_batch=8192, steps_per_epoch=100)
    assert schedule.value(0) == pytest.approx(0.1)
    assert schedule.value(250) == pytest.approx(0.1 + (3.2 - 0.1) * 0.5)
    assert schedule.value(500) == pytest.approx(3.2)  # 0.1 * 8192 / 256
    assert schedule.value(3000) == pytest.approx(0.32)
    assert schedules.goyal_schedule(256, 100).warmup_steps == 0


def test_scaled_boundaries_keep_proportions():
    assert schedules.scaled_boundaries([32000, 48000], 640, 64000) == [320, 480]


def test_boundaries_must_be_positive_increasing():
    assert schedules.parse_boundaries("lr_boundaries", ["32000", "48000"]) == [32000, 48000]
    for values, problem in ((["x"], "must be comma-separated integers"),
                            (["-5"], "must be positive"), (["0", "10"], "must be positive"),
                            (["48", "32"], "must increase"), (["32", "32"], "must increase")):
        with pytest.raises(UsageError, match=rf"^--lr_boundaries={','.join(values)}: {problem}"):
            schedules.parse_boundaries("lr_boundaries", values)


def test_steps_for_rejects_steps_and_epochs():
    assert schedules.steps_for(None, 3, 351, 64000) == 1053
    assert schedules.steps_for(None, None, 351, 64000) == 64000
    with pytest.raises(ValueError, match="--train_steps=10 and --epochs=2"):
        schedules.steps_for(10, 2, 351, 64000)


def test_warmup_ends_below_80_percent_error():
    rule = schedules.WarmupUntilError(warmup_lr=0.01, window=10)
    accuracy_per_batch = [0.1] * 40 + [0.3] * 20  # error 90%, then 70%
    total = 0.0
    for k, accuracy in enumerate(accuracy_per_batch, start=1):
        total += accuracy
        rule.update(step=1000 + k, batches_seen=k, running_accuracy=total / k)
        if k <= 44:  # the window's error is still above 80%: 10 batches, > 5 at 90%
            assert rule.active, k
    # The epoch-long running mean is still above 80% error at the end; the window is not.
    assert 1 - total / len(accuracy_per_batch) > 0.8
    assert not rule.active and 1045 <= rule.ended_at <= 1047


def test_warmup_default_for_resnet110_and_up():
    import keras_resnet

    assert schedules.use_warmup("auto", keras_resnet.get_spec("resnet110").depth)
    assert not schedules.use_warmup("auto", keras_resnet.get_spec("resnet56").depth)
    assert schedules.use_warmup("on", 20) and not schedules.use_warmup("off", 1202)


def test_warmup_waits_for_a_full_window():
    rule = schedules.WarmupUntilError(window=50)
    for k in range(1, 50):
        rule.update(step=k, batches_seen=k, running_accuracy=0.5)
    assert rule.active
    rule.update(step=50, batches_seen=50, running_accuracy=0.5)
    assert rule.ended_at == 50


def test_warmup_stops_after_max_steps():
    rule = schedules.WarmupUntilError(max_steps=50)
    for k in range(1, 60):
        rule.update(step=k, batches_seen=k, running_accuracy=0.1)
    assert rule.ended_at == 50


def test_controller_warms_up_in_a_real_fit():
    """Batches 1-6 have random labels (error ~90%), batches 7-8 the model's own predictions
    (error ~0%): lr is 0.01 until the warm-up ends, then the schedule's 0.2."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(512, 4)).astype("float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(10)])
    y = np.argmax(model.predict(x, verbose=0), axis=1)
    y[:384] = rng.integers(0, 10, 384)
    model.compile(
        keras.optimizers.SGD(0.5),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    rule = schedules.WarmupUntilError(warmup_lr=0.01, window=1)
    controller = schedules.LearningRateController(schedules.cifar_schedule(0.2, [1000, 2000]), rule)
    seen = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            seen.append(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))

    model.fit(
        x, y, batch_size=64, epochs=1, shuffle=False, verbose=0, callbacks=[controller, Record()]
    )
    assert rule.ended_at == 7, "the first batch of model-predicted labels ends the warm-up"
    assert seen == pytest.approx([0.01] * 7 + [0.2])


def test_segments_align_epochs_on_resume():
    assert plan_segments(0, 1000, 352) == [
        type(s)(*a) for s, a in zip(plan_segments(0, 1000, 352), [(0, 2, 352, 0), (2, 3, 296, 704)])
    ]
    resumed = plan_segments(100, 1000, 352)
    assert [(s.initial_epoch, s.epochs, s.steps_per_epoch, s.first_step) for s in resumed] == [
        (0, 1, 252, 100), (1, 2, 352, 352), (2, 3, 296, 704)]
    assert sum(s.num_steps for s in resumed) == 900
    assert plan_segments(1000, 1000, 352) == []
