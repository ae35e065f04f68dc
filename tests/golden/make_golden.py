"""Write the golden checkpoints of one format version (run once per version, never again), and the
golden checkpoint of each operator's example (run when an operator is added; existing ones are kept).

    python -m tests.golden.make_golden v2
    python -m tests.golden.make_golden operators

Refuses to overwrite: goldens are never regenerated. For each pipeline of ``PIPELINES`` it runs
``CHECKPOINT_AT`` steps (crossing reader epochs), saves ``NAME.cpt``, then saves the next ``AFTER``
batches as ``NAME/step{j}_out{k}.npy`` (``..._out{k}_{i}.npy`` per sample when
samples differ in shape); tests/golden/test_golden.py restores and compares them.
"""

from __future__ import annotations

import os
import sys

import numpy as np

from tests.golden import pipelines

PIPELINES = ("random_ops", "file_reader", "numpy_reader", "tfrecord_reader", "external_sources")
CHECKPOINT_AT = 7
AFTER = 5


def main(version: str) -> None:
    root = os.path.join(os.path.dirname(__file__), version)
    if os.path.exists(root):
        sys.exit(f"{root} exists: goldens are never regenerated")
    os.makedirs(root)
    os.chdir(root)
    pipelines.make_data("data")
    for name in PIPELINES:
        pipe = getattr(pipelines, name)()
        for _ in range(CHECKPOINT_AT):
            pipe.run()
        with open(f"{name}.cpt", "wb") as f:
            f.write(pipe.checkpoint())
        os.makedirs(name)
        for j in range(AFTER):
            for k, out in enumerate(pipe.run()):
                if out.is_dense_tensor():
                    np.save(os.path.join(name, f"step{j}_out{k}.npy"), out.as_array())
                else:  # samples of different shapes: one file per sample
                    for i, sample in enumerate(out):
                        np.save(os.path.join(name, f"step{j}_out{k}_{i}.npy"), sample)
        pipe.close()


OPERATORS_DIR = os.path.join(os.path.dirname(__file__), "v2", "operators")
OPERATOR_CHECKPOINT_AT = 4  # crosses the example's epoch end (3 batches, then the end-of-epoch step)
OPERATOR_AFTER = 4


def operator_dir(op_type: str) -> str:
    """Where an operator's golden lives."""
    return os.path.join(OPERATORS_DIR, op_type)


def operator_steps(pipe, steps: int) -> list:
    """Run ``steps`` steps (an epoch end is a step: it resets) and return their events."""
    from pipestate.testing import record

    events, _ = record(pipe, steps)
    return events


def write_operator_golden(op_type: str) -> None:
    """Write ``v2/operators/<type>/``: the example's checkpoint after OPERATOR_CHECKPOINT_AT steps and the
    OPERATOR_AFTER steps that follow (``events.npz``; epoch ends as ``end{j}``). Run in a scratch directory:
    the example's dataset is written to ``data/`` there, as the test does."""
    from pipestate import testing

    cls, example = testing.example_of(op_type)
    setup_args = testing.example_setup(example)
    pipe = testing.example_pipeline(cls, setup_args=setup_args)
    operator_steps(pipe, OPERATOR_CHECKPOINT_AT)
    blob = pipe.checkpoint()
    events = operator_steps(pipe, OPERATOR_AFTER)
    pipe.close()
    arrays = {}
    for j, event in enumerate(events):
        if isinstance(event, str):
            arrays[f"end{j}"] = np.zeros(0)
            continue
        for k, out in enumerate(event):
            for i, sample in enumerate(out):
                arrays[f"step{j}_out{k}_sample{i}"] = sample
    target = operator_dir(op_type)
    os.makedirs(target)
    with open(os.path.join(target, "checkpoint.cpt"), "wb") as f:
        f.write(blob)
    np.savez(os.path.join(target, "events.npz"), **arrays)


def write_missing_operator_goldens() -> list[str]:
    """Write the golden of every registered operator that has none; return their types."""
    import tempfile

    from pipestate.operators import REGISTRY

    written = []
    here = os.getcwd()
    for op_type in sorted(REGISTRY):
        if os.path.exists(operator_dir(op_type)):
            continue
        with tempfile.TemporaryDirectory() as scratch:
            os.chdir(scratch)
            try:
                write_operator_golden(op_type)
            finally:
                os.chdir(here)
        written.append(op_type)
    return written


if __name__ == "__main__":
    if sys.argv[1] == "operators":
        print("\n".join(write_missing_operator_goldens()) or "every operator has its golden")  # noqa: T201
    else:
        main(sys.argv[1])
