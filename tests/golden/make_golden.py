"""Write the golden checkpoints of one format version (run once per version, never again).

    python -m tests.golden.make_golden v1

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


if __name__ == "__main__":
    main(sys.argv[1])
