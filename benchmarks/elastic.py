"""What does an elastic job checkpoint cost? Size and combine/split time for 8, 64 and 1,024 shards over a
1,000,000-sample dataset, and the restore time of one shard (simulated in one process).

The shards' checkpoints are those of a real elastic job: one pipeline runs the job on one shard, and
``distributed.split`` gives the N shards their checkpoints (for 8 shards the benchmark also builds the 8
pipelines and checks that they write exactly these bytes). Then, per N: ``combine`` of the N checkpoints,
the job checkpoint's size, ``split`` into N shards with twice the global batch size (every shard gets new
bytes) and into 2N shards, and, for shard 0 of the N-shard layout, ``Pipeline.restore`` into a running
pipeline, a new pipeline constructed with ``checkpoint=`` (it lists the 1,000,000-line file list), and
its first batch (which computes the epoch's global order: proportional to the dataset, not to the
position or the number of shards).
Goals (issue 19): O(shards) bytes, a few hundred bytes per shard, split for 1,024 shards under 100 ms.
No peer has this operation (DALI, tf.data, torchdata cannot resume on another shard count).

Run: PYTHONPATH=. python benchmarks/elastic.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from _common import fmt, machine, markdown_table, save

from pipestate import distributed, fn, pipeline_def

SAMPLES = 1_000_000
GLOBAL_BATCH = 4096
SHARDS = (8, 64, 1024)


@pipeline_def(seed=7, num_threads=1, enable_checkpointing=True, prefetch_queue_depth=1)
def job(file_list, shard_id, num_shards, global_batch_size):
    data, label = fn.readers.file(
        file_list=file_list,
        elastic=True,
        random_shuffle=True,
        initial_fill=1024,
        shard_id=shard_id,
        num_shards=num_shards,
        global_batch_size=global_batch_size,
        name="reader",
    )
    return data, label, fn.random.uniform(range=[0.0, 1.0]), fn.random.coin_flip()


def shard_pipe(files, shard_id, num_shards, checkpoint=None):
    batch = distributed.local_batch_size(GLOBAL_BATCH, num_shards, shard_id)
    return job(files, shard_id, num_shards, GLOBAL_BATCH, batch_size=batch, checkpoint=checkpoint)


def timed(call, rounds: int) -> tuple[list[float], object]:
    """Milliseconds per call over ``rounds`` calls, and the last result."""
    times, result = [], None
    for _ in range(rounds):
        start = time.perf_counter()
        result = call()
        times.append((time.perf_counter() - start) * 1e3)
    return times, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "sample.bin"), "wb") as f:
            f.write(os.urandom(64))
        files = os.path.join(tmp, "list.txt")  # one small file listed a million times: a 1,000,000-sample dataset
        with open(files, "w") as f:
            f.writelines(f"sample.bin {i}\n" for i in range(SAMPLES))
        (source,) = [shard_pipe(files, 0, 1)]
        for _ in range(3):
            source.run()
        one = distributed.combine([source.checkpoint()])
        source.close()

        check = distributed.split(one, 8)
        real = [shard_pipe(files, k, 8, check[k]) for k in range(8)]
        assert [p.checkpoint() for p in real] == check, "split must give the bytes the shards' pipelines write"
        for p in real:
            p.close()

        rows, figures = [], {}
        for n in SHARDS:
            parts = distributed.split(one, n)
            combine_ms, job_bytes = timed(lambda parts=parts: distributed.combine(parts), args.rounds)
            split_ms, _ = timed(lambda b=job_bytes, n=n: distributed.split(b, n, 2 * GLOBAL_BATCH), args.rounds)
            double_ms, _ = timed(lambda b=job_bytes, n=n: distributed.split(b, 2 * n), args.rounds)
            pipe = shard_pipe(files, 0, n)
            pipe.run()
            restore_ms = []
            for _ in range(args.rounds):
                time.sleep(0.2)  # the prefetcher is idle: restore() waits for no batch
                start = time.perf_counter()
                pipe.restore(parts[0])
                restore_ms.append((time.perf_counter() - start) * 1e3)
            pipe.close()
            fresh_ms, first_ms = [], []
            for _ in range(min(args.rounds, 3)):
                start = time.perf_counter()
                pipe = shard_pipe(files, 0, n, parts[0])
                middle = time.perf_counter()
                pipe.run()
                fresh_ms.append((middle - start) * 1e3)
                first_ms.append((time.perf_counter() - middle) * 1e3)
                pipe.close()
            per_shard = len(job_bytes) / n
            figures[n] = (len(job_bytes), combine_ms, split_ms, restore_ms)
            rows.append(
                [
                    f"{n:,}",
                    f"{len(job_bytes):,}",
                    f"{per_shard:.0f}",
                    fmt(combine_ms),
                    fmt(split_ms),
                    fmt(double_ms),
                    fmt(restore_ms, 2),
                    fmt(fresh_ms, 0),
                    fmt(first_ms, 0),
                ]
            )
    header = [
        "shards",
        "job checkpoint (bytes)",
        "bytes/shard",
        "combine (ms)",
        "split, 2x global batch (ms)",
        "split into 2x shards (ms)",
        "restore() one shard (ms)",
        "new shard pipeline with checkpoint= (ms)",
        "its first batch (ms)",
    ]
    table = markdown_table(header, rows)
    title = (
        f"Elastic job checkpoints, {SAMPLES:,} samples, global batch {GLOBAL_BATCH}, median (min–max) of "
        f"{args.rounds} rounds; {machine()}"
    )
    print(title + "\n\n" + table)

    def plot(path):
        import matplotlib.pyplot as plt

        shards = list(figures)
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
        left.plot(shards, [figures[n][0] for n in shards], "o-")
        left.set(xscale="log", yscale="log", xlabel="shards", ylabel="job checkpoint (bytes)", title="size")
        for label, k in (("combine", 1), ("split, 2x global batch", 2), ("restore() one shard", 3)):
            right.plot(shards, [sorted(figures[n][k])[len(figures[n][k]) // 2] for n in shards], "o-", label=label)
        right.axhline(100, color="gray", linestyle="--", label="goal: split < 100 ms at 1,024")
        right.set(xscale="log", yscale="log", xlabel="shards", ylabel="ms (median)", title="time")
        right.legend()
        fig.tight_layout()
        fig.savefig(path)

    save("elastic", title + "\n\n" + table, plot)


if __name__ == "__main__":
    main()
