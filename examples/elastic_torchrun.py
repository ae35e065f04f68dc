"""Elastic data-parallel training with torchrun: train, checkpoint, be killed, resume on another number of
processes with another global batch size (see docs/distributed.md).

    torchrun --nnodes=1 --nproc_per_node=2 --master_addr=127.0.0.1 --master_port=29511 \\
        examples/elastic_torchrun.py --dir /tmp/elastic --steps 12 --global-batch 8
    # ... killed; later, on three processes with a global batch of 9:
    torchrun --nnodes=1 --nproc_per_node=3 --master_addr=127.0.0.1 --master_port=29511 \\
        examples/elastic_torchrun.py --dir /tmp/elastic --steps 12 --global-batch 9

Every process runs one shard of one elastic reader: each global step reads the next ``--global-batch``
samples of the job's sequence, process ``k`` taking its part. Every ``--every`` steps the shards'
checkpoints are gathered over ``torch.distributed`` (gloo) into a job checkpoint, saved with the model in
one ``torch.distributed.checkpoint``. At start the latest one is loaded and each process takes its own
shard's checkpoint for the current number of processes: the job continues its sequence exactly. Each
process logs the samples of every step to ``<dir>/log/<--record>-rank<k>.jsonl`` (what the tests compare).
"""

from __future__ import annotations

import argparse
import json
import os
import signal

import numpy as np

from pipestate import distributed, fn, pipeline_def

FEATURES = 16


def make_dataset(root: str, samples: int) -> list[str]:
    """Write ``samples`` files of FEATURES float32 features each (file ``i``'s label is ``i``)."""
    os.makedirs(root, exist_ok=True)
    paths = [os.path.join(root, f"{i:05d}.bin") for i in range(samples)]
    for i, path in enumerate(paths):
        if not os.path.exists(path):
            features = np.random.default_rng(i).standard_normal(FEATURES).astype(np.float32)
            with open(path + ".tmp", "wb") as f:
                f.write(features.tobytes())
            os.replace(path + ".tmp", path)
    return paths


@pipeline_def(seed=2024, num_threads=1, enable_checkpointing=True)
def training_input(files, shard_id, num_shards, global_batch_size):
    """One shard of the job's input: features (bytes), the sample's index, and a random scale."""
    features, index = fn.readers.file(
        files=files,
        elastic=True,
        shard_id=shard_id,
        num_shards=num_shards,
        global_batch_size=global_batch_size,
        random_shuffle=True,
        initial_fill=16,
        name="reader",
    )
    return features, index, fn.random.uniform(range=[0.5, 1.5])


def latest_checkpoint(root: str) -> str | None:
    """The newest complete checkpoint directory (DCP writes ``.metadata`` last)."""
    if not os.path.isdir(root):
        return None
    done = sorted(d for d in os.listdir(root) if os.path.exists(os.path.join(root, d, ".metadata")))
    return os.path.join(root, done[-1]) if done else None


def main(argv: list[str] | None = None) -> None:
    """Train until ``--steps`` global steps are done (resuming from the latest checkpoint)."""
    import torch
    import torch.distributed as dist
    import torch.distributed.checkpoint as dcp

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--every", type=int, default=3, help="checkpoint every this many global steps")
    parser.add_argument("--global-batch", type=int, default=8)
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--kill-at", type=int, default=None, help="process 0 kills itself after this step")
    parser.add_argument("--record", default="run", help="name of the sample logs")
    args = parser.parse_args(argv)

    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    if rank == 0:
        make_dataset(os.path.join(args.dir, "data"), args.samples)
    dist.barrier()
    files = make_dataset(os.path.join(args.dir, "data"), args.samples)

    torch.manual_seed(0)
    model = torch.nn.Linear(FEATURES, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    ckpt_root = os.path.join(args.dir, "checkpoints")
    latest = latest_checkpoint(ckpt_root)
    checkpoint, start = None, 0
    if latest is not None:
        dcp.load({"model": model.state_dict()}, checkpoint_id=latest)
        job = distributed.load_from_dcp(latest)
        start = distributed.read_job(job).iteration
        checkpoint = distributed.shard_checkpoint(job, rank, world, args.global_batch)
    pipe = training_input(
        files,
        rank,
        world,
        args.global_batch,
        batch_size=distributed.local_batch_size(args.global_batch, world, rank),
        checkpoint=checkpoint,
    )
    os.makedirs(os.path.join(args.dir, "log"), exist_ok=True)
    log = open(os.path.join(args.dir, "log", f"{args.record}-rank{rank}.jsonl"), "a")  # noqa: SIM115
    for step in range(start, args.steps):
        features, index, scale = pipe.run()
        x = torch.from_numpy(np.stack([np.frombuffer(f.tobytes(), np.float32) for f in features]))
        x = x * torch.from_numpy(np.asarray(scale)).reshape(-1, 1)
        loss = model(x).pow(2).mean() * (len(x) / args.global_batch)  # this shard's part of the global mean
        optimizer.zero_grad()
        loss.backward()
        for p in model.parameters():  # the global batch's gradient on every process
            dist.all_reduce(p.grad)
        optimizer.step()
        record = {"step": step, "world": world, "index": np.asarray(index).ravel().tolist()}
        log.write(json.dumps({**record, "scale": np.asarray(scale).ravel().tolist()}) + "\n")
        log.flush()
        if (step + 1) % args.every == 0 or step + 1 == args.steps:
            job = distributed.gather(pipe.checkpoint())
            state = {"model": model.state_dict()}
            if rank == 0:
                state["pipestate"] = distributed.to_tensor(job)
            dcp.save(state, checkpoint_id=os.path.join(ckpt_root, f"step-{step + 1:06d}"))
        if step + 1 == args.kill_at and rank == 0:
            os.kill(os.getpid(), signal.SIGKILL)
    log.close()
    pipe.close()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
