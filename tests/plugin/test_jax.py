"""JAX plugin: arrays, several pipelines over CPU devices, the decorator with devices/sharding, checkpoints."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

jax = pytest.importorskip("jax", reason="JAX is not installed (pip install pipestate[jax])")

from pipestate import fn, pipeline_def  # noqa: E402
from pipestate.plugin.jax import DALIGenericIterator, LastBatchPolicy, data_iterator  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pipeline_def(batch_size=4, seed=3, enable_checkpointing=True)
def randoms():
    return fn.random.uniform(shape=[3]), fn.random.coin_flip()


def test_outputs_are_jax_arrays_equal_to_the_pipeline():
    it = DALIGenericIterator(randoms(), ["u", "flip"], size=40)
    out = next(it)
    assert isinstance(out["u"], jax.Array) and out["u"].shape == (4, 3)
    u, flip = randoms().run()
    np.testing.assert_array_equal(np.asarray(out["u"]), np.asarray(u))
    np.testing.assert_array_equal(np.asarray(out["flip"]), np.asarray(flip))


def test_partial_is_refused_as_in_dali():
    with pytest.raises(ValueError, match="PARTIAL"):
        DALIGenericIterator(randoms(), ["u", "flip"], size=40, last_batch_policy=LastBatchPolicy.PARTIAL)


def test_state_dict_round_trip():
    it = DALIGenericIterator(randoms(), ["u", "flip"], size=12, auto_reset=True)
    for _ in range(4):
        try:
            next(it)
        except StopIteration:
            pass
    sd = it.state_dict()
    expected = [np.asarray(next(it)["u"]) for _ in range(2)]
    fresh = DALIGenericIterator(randoms(), ["u", "flip"], size=12, auto_reset=True)
    fresh.load_state_dict(sd)
    for e in expected:
        np.testing.assert_array_equal(np.asarray(next(fresh)["u"]), e)


def test_one_pipeline_per_cpu_device_with_devices_and_sharding(tmp_path):
    script = tmp_path / "devices.py"
    script.write_text(
        textwrap.dedent(
            """
        import numpy as np, jax
        from jax.sharding import Mesh, NamedSharding, PartitionSpec
        from pipestate import fn
        from pipestate.plugin.jax import data_iterator
        assert len(jax.devices()) == 2

        def body(shard_id, num_shards):
            return fn.external_source(source=lambda i: np.full((2, 1), 10 * shard_id + i, np.int32))

        mesh = Mesh(np.array(jax.devices()), ("batch",))
        by_devices = data_iterator(body, output_map=["x"], size=20, devices=jax.devices())
        by_sharding = data_iterator(body, output_map=["x"], size=20,
                                    sharding=NamedSharding(mesh, PartitionSpec("batch")))
        a = next(by_devices(batch_size=4, seed=1, enable_checkpointing=True))["x"]
        b = next(by_sharding(batch_size=4, seed=1, enable_checkpointing=True))["x"]
        assert a.shape == (2, 2, 1) and len(a.sharding.device_set) == 2, a.shape
        assert b.shape == (4, 1) and len(b.sharding.device_set) == 2, b.shape
        assert np.asarray(a)[:, :, 0].tolist() == [[0, 0], [10, 10]]
        assert np.asarray(b)[:, 0].tolist() == [0, 0, 10, 10]
        it = by_devices(batch_size=4, seed=1, enable_checkpointing=True)
        next(it)
        it2 = by_devices(batch_size=4, seed=1, enable_checkpointing=True, checkpoints=it.checkpoints())
        assert np.array_equal(np.asarray(next(it)["x"]), np.asarray(next(it2)["x"]))
        print("OK")
        """
        )
    )
    env = {
        **os.environ,
        "PYTHONPATH": ROOT,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
        "JAX_PLATFORMS": "cpu",
        "PYTHONWARNINGS": "ignore",
    }
    out = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().endswith("OK"), out.stdout + out.stderr


def test_decorator_checkpoints():
    @data_iterator(output_map=["u"], size=12, auto_reset=True)
    def fn_iter():
        return fn.random.normal(shape=[2])

    it = fn_iter(batch_size=3, seed=2, enable_checkpointing=True)
    next(it)
    cpts = it.checkpoints()
    expected = np.asarray(next(it)["u"])
    it2 = fn_iter(batch_size=3, seed=2, enable_checkpointing=True, checkpoints=cpts)
    np.testing.assert_array_equal(np.asarray(next(it2)["u"]), expected)
