"""pipestate.auto_aug against DALI's nvidia.dali.auto_aug: the same policies and suites (every table entry), the
same augmentations (outputs identical to DALI's given the same magnitude bins and signs), and errors."""

import numpy as np
import pytest

from pipestate import fn, pipeline_def
from pipestate.auto_aug import augmentations as a
from pipestate.auto_aug import auto_augment, rand_augment, trivial_augment
from pipestate.auto_aug.core import signed_bin
from tests.operators.image._dali import test_image

BATCH = 8
def dali_aa():
    pytest.importorskip("nvidia.dali", reason="DALI is the reference oracle; pip install '.[dali]'")
    import nvidia.dali.auto_aug.augmentations
    import nvidia.dali.auto_aug.auto_augment
    import nvidia.dali.auto_aug.core
    import nvidia.dali.auto_aug.rand_augment
    import nvidia.dali.auto_aug.trivial_augment  # noqa: F401 - the submodules, as attributes of the package

    return nvidia.dali.auto_aug


def describe(aug):
    """What defines an augmentation: its function's name, its setup, and the parameters of 11 bins."""
    mags = aug._get_magnitudes(11)
    params = None if mags is None else [aug._map_mag_to_param(m).tolist() for m in mags]
    return (aug.op.__name__, aug.name, aug.randomly_negate, params)


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("image_net", {}),
        ("image_net", {"use_shape": True, "max_translate_rel": 0.4}),
        ("reduced_cifar10", {"max_translate_abs": (40, 70)}),
        ("svhn", {}),
        ("reduced_image_net", None),
    ],
)
def test_policies_are_dalis(name, kwargs):
    theirs_module = dali_aa().auto_augment
    getter = f"get_{name}_policy"
    ours = getattr(auto_augment, getter)(**(kwargs or {}))
    theirs = getattr(theirs_module, getter)(**(kwargs or {}))
    assert ours.name == theirs.name and ours.num_magnitude_bins == theirs.num_magnitude_bins
    assert len(ours.sub_policies) == len(theirs.sub_policies)
    for mine, dalis in zip(ours.sub_policies, theirs.sub_policies):
        assert [(describe(x), p, m) for x, p, m in mine] == [(describe(x), p, m) for x, p, m in dalis]
    for build in ("probability", "magnitude_bin"):
        ours_map = getattr(auto_augment, f"_sub_policy_to_{build}_map")
        assert ours_map(ours) is not None
    ours_matrix, ours_stages = auto_augment._sub_policy_to_augmentation_matrix_map(ours)
    theirs_matrix, theirs_stages = theirs_module._sub_policy_to_augmentation_matrix_map(theirs)
    assert (ours_matrix == theirs_matrix).all()
    assert [[x.name for x in s] for s in ours_stages] == [[x.name for x in s] for s in theirs_stages]


@pytest.mark.parametrize("use_shape", [False, True])
def test_suites_are_dalis(use_shape):
    aa = dali_aa()
    pairs = [
        (rand_augment.get_rand_augment_suite, aa.rand_augment.get_rand_augment_suite),
        (rand_augment.get_rand_augment_non_monotonic_suite, aa.rand_augment.get_rand_augment_non_monotonic_suite),
        (trivial_augment.get_trivial_augment_wide_suite, aa.trivial_augment.get_trivial_augment_wide_suite),
    ]
    for ours, theirs in pairs:
        assert [describe(x) for x in ours(use_shape)] == [describe(x) for x in theirs(use_shape)]


def run_both(name, bins, signs, images):
    """Augmentation ``name`` of both libraries on ``images`` with per-sample bins and signs (11 bins)."""
    aa = dali_aa()
    from nvidia.dali import fn as dfn
    from nvidia.dali import pipeline_def as dali_pipeline_def

    outs = []
    for lib_fn, make, options, module, signed in (
        (fn, pipeline_def, {}, a, signed_bin),
        (dfn, dali_pipeline_def, {"device_id": None}, aa.augmentations, aa.core.signed_bin),
    ):
        outs.append(_run(lib_fn, make, options, getattr(module, name), signed, bins, signs, images))
    return outs


def _run(lib_fn, make, options, aug, signed, bins, signs, images):
    def feed(values):
        return lambda: list(values)

    @make(batch_size=len(images), num_threads=1, seed=4, **options)
    def pipe():
        x = lib_fn.external_source(source=feed(images), layout="HWC")
        b = lib_fn.external_source(source=feed(bins))
        s = lib_fn.external_source(source=feed(signs))
        return aug(x, magnitude_bin=signed(b, s), num_magnitude_bins=11)

    p = pipe()
    if hasattr(p, "build"):
        p.build()
    (out,) = p.run()
    return [np.array(out[i]) for i in range(len(images))]


@pytest.mark.parametrize(
    "name",
    [
        "brightness",
        "color",
        "sharpness",
        "posterize",
        "solarize",
        "solarize_add",
        "invert",
        "equalize",
        "identity",
        "contrast",
        "auto_contrast",
    ],
)
def test_augmentations_are_identical_to_dalis(name):
    images = [test_image(k, 24 + k, 30) for k in range(BATCH)]
    bins = [np.int32(k % 11) for k in range(BATCH)]
    signs = [np.int32((k // 2) % 2) for k in range(BATCH)]
    ours, theirs = run_both(name, bins, signs, images)
    for k, (x, y) in enumerate(zip(ours, theirs)):
        assert x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes(), (name, k)


def test_poster_mask_and_sharpness_kernels():
    aa = dali_aa().augmentations
    for magnitude in np.linspace(0, 8, 17):
        assert a.poster_mask_uint8(magnitude) == aa.poster_mask_uint8(magnitude)
    for magnitude in np.linspace(-1, 1, 9, dtype=np.float32):
        np.testing.assert_array_equal(a.sharpness_kernel(magnitude), aa.sharpness_kernel(magnitude))


def test_errors():
    data = None
    with pytest.raises(ValueError, match="`policy_name` must be a string"):
        auto_augment.auto_augment(data, "imagenet")
    with pytest.raises(TypeError, match="does not contain any augmentations that rely on the image shape"):
        auto_augment.auto_augment(data, "reduced_image_net", max_translate_abs=10)
    with pytest.raises(TypeError, match="`max_translate_rel` cannot be used without image shapes"):
        auto_augment.get_image_net_policy(max_translate_rel=0.5)
    with pytest.raises(ValueError, match="`n` must be a non-negative integer"):
        rand_augment.apply_rand_augment([a.identity], data, -1, 3)
    with pytest.raises(ValueError, match=r"`m` must be an integer from `\[0, 30\]`"):
        rand_augment.apply_rand_augment([a.identity], data, 1, 31)
    with pytest.raises(ValueError, match="`nonexistent` was specified in `excluded`"):
        rand_augment.rand_augment(data, 2, 3, excluded=["nonexistent"])
    with pytest.raises(ValueError, match="cannot be empty"):
        trivial_augment.apply_trivial_augment([], data)
    with pytest.warns(Warning, match="n=0"):
        assert rand_augment.apply_rand_augment([a.identity], data, 0, 3) is None
