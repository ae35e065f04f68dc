"""apply_auto_augment, apply_rand_augment and apply_trivial_augment: which augmentations run, how often, at
which magnitudes (chi-square tests against the policy's probabilities), signs, restores and threads.

The augmentations here mark what they did in an int32 "image": ``flag_i`` adds ``2**i``, ``magnitude`` adds
``1000 * (signed magnitude + 100)``; so every output says which augmentations ran and at what magnitude.
"""

import functools

import numpy as np
import pytest

from pipestate import fn, pipeline_def, types
from pipestate.auto_aug import augmentations as a
from pipestate.auto_aug import auto_augment, rand_augment, trivial_augment
from pipestate.auto_aug.core import Policy, augmentation
from pipestate.testing import assert_equal_output_after_checkpoint, assert_same_output
from tests.operators.image._dali import test_image

chisquare = pytest.importorskip("scipy.stats", reason="SciPy (the image extra) runs the chi-square tests").chisquare


def flag(bit):
    def add(data, _):
        return data + (1 << bit)

    add.__name__ = f"flag_{bit}"
    return augmentation(add)


FLAGS = [flag(i) for i in range(6)]


@augmentation(mag_range=(0, 10), randomly_negate=True)
def magnitude(data, param):
    return data + fn.cast((param + 100.0) * 1000.0, dtype=types.INT32)


def run(build, batch_size, seed=7, steps=1):
    @pipeline_def(batch_size=batch_size, num_threads=2, seed=seed, enable_conditionals=True)
    def pipe():
        return build(types.Constant(np.zeros(1, dtype=np.int32)))

    p = pipe()
    outs = np.concatenate([np.array(p.run()[0].as_array()).reshape(-1) for _ in range(steps)])
    p.close()
    return outs


def test_auto_augment_step_frequencies_follow_the_policy():
    sub_policies = [
        [(FLAGS[0], 0.5, None), (FLAGS[1], 0.25, None)],
        [(FLAGS[2], 0.8, None), (FLAGS[3], 0.6, None)],
        [(FLAGS[4], 1.0, None)],
        [(FLAGS[5], 0.3, None), (FLAGS[0], 0.9, None)],
    ]
    policy = Policy("Flags", 11, sub_policies)

    def build(x):
        return auto_augment.apply_auto_augment(policy, x)

    out = run(build, 2000)
    expected = {}
    for sub in sub_policies:
        steps = [(1 << int(aug.name.split("_")[1]), p) for aug, p, _ in sub]
        for mask in range(1 << len(steps)):
            prob, value = 1 / len(sub_policies), 0
            for k, (bit, p) in enumerate(steps):
                ran = mask >> k & 1
                prob *= p if ran else 1 - p
                value += bit * ran
            if prob:
                expected[value] = expected.get(value, 0) + prob
    values, counts = np.unique(out, return_counts=True)
    assert set(values) <= set(expected)
    observed = [int(counts[values == v].sum()) for v in expected]
    assert chisquare(observed, [p * len(out) for p in expected.values()]).pvalue > 1e-3


def test_auto_augment_magnitudes_and_signs():
    policy = Policy("Magnitudes", 11, [[(magnitude, 1.0, 3)], [(magnitude, 1.0, 7), (FLAGS[0], 1.0, None)]])

    def build(x):
        return auto_augment.apply_auto_augment(policy, x)

    out = run(build, 1000)
    mags = (out // 1000) - 100
    assert set(np.unique(mags)) == {-7, -3, 3, 7}
    assert ((out % 2 == 1) == (np.abs(mags) == 7)).all()  # the flag runs only after the second sub-policy's step
    assert abs((mags < 0).mean() - 0.5) < 0.05


def test_rand_augment_draws_n_uniform_augmentations_at_bin_m():
    def two_flags(x):
        return rand_augment.apply_rand_augment(FLAGS[:4], x, n=2, m=5)

    def one_magnitude(x):
        return rand_augment.apply_rand_augment([magnitude], x, n=1, m=4, num_magnitude_bins=11)

    out = run(two_flags, 3000)
    # two draws with replacement among 4 flags: a repeated flag adds 2 * 2**i
    combos = {}
    for i in range(4):
        for j in range(4):
            value = (1 << i) + (1 << j)
            combos[value] = combos.get(value, 0) + 1 / 16
    values, counts = np.unique(out, return_counts=True)
    assert set(values) == set(combos)
    assert (
        chisquare([int(counts[values == v][0]) for v in combos], [p * len(out) for p in combos.values()]).pvalue > 1e-3
    )
    mags = run(one_magnitude, 400) // 1000 - 100
    assert set(np.unique(mags)) == {-4, 4}


def test_trivial_augment_draws_one_augmentation_and_a_uniform_bin():
    def build(x):
        return trivial_augment.apply_trivial_augment([magnitude, FLAGS[0]], x, num_magnitude_bins=11)

    out = run(build, 4000)
    flagged = out == 1
    assert abs(flagged.mean() - 0.5) < 0.03
    mags = out[~flagged] // 1000 - 100
    values, counts = np.unique(np.abs(mags), return_counts=True)
    assert set(values) == set(range(11))
    assert chisquare(counts).pvalue > 1e-3


COLOUR = ["brightness", "color", "sharpness", "posterize", "solarize", "equalize", "identity"]


def images_pipeline(build, batch_size=6, num_threads=2, prefetch_queue_depth=2, checkpoint=None):
    images = [test_image(k, 20 + k, 24) for k in range(12)]

    @pipeline_def(
        batch_size=batch_size,
        num_threads=num_threads,
        seed=11,
        enable_conditionals=True,
        enable_checkpointing=True,
        prefetch_queue_depth=prefetch_queue_depth,
    )
    def pipe():
        x = fn.external_source(source=lambda info: images[info.idx_in_epoch % 12], batch=False, layout="HWC")
        return build(x)

    return pipe(checkpoint=checkpoint)


def colour_only(suite):
    return [aug for aug in suite if aug.name in COLOUR]


def rand(x):
    return rand_augment.apply_rand_augment(colour_only(rand_augment.get_rand_augment_suite()), x, 3, 20)


def trivial(x):
    return trivial_augment.apply_trivial_augment(colour_only(trivial_augment.get_trivial_augment_wide_suite()), x)


COLOUR_POLICY = Policy(
    "Colour",
    11,
    [
        [(a.color.augmentation((0.1, 1.9), False, None), 0.4, 9), (a.equalize, 0.6, None)],
        [(a.solarize.augmentation((0, 256), False), 0.8, 3), (a.invert, 0.4, None)],
        [(a.posterize.augmentation((0, 4), False, a.poster_mask_uint8), 0.8, 2)],
    ],
)


def auto(x):
    return auto_augment.apply_auto_augment(COLOUR_POLICY, x)


BUILDS = {"rand": rand, "trivial": trivial, "auto": auto}


@pytest.mark.parametrize("name", list(BUILDS))
def test_restores_and_is_thread_and_prefetch_independent(name):
    factory = functools.partial(images_pipeline, BUILDS[name])
    assert_equal_output_after_checkpoint(factory, steps=5)
    assert_same_output(factory, [{"num_threads": 1}, {"num_threads": 3, "prefetch_queue_depth": 1}], steps=3)


def test_augmentations_change_the_images():
    p = images_pipeline(BUILDS["rand"])
    (out,) = p.run()
    p.close()
    changed = [not np.array_equal(np.array(o), test_image(k, 20 + k, 24)) for k, o in enumerate(out)]
    assert sum(changed) >= 4
