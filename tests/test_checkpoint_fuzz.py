"""Fuzzing the restore path with well-formed but wrong checkpoints (issues 9 and 15).

Valid checkpoints of several pipelines (random operators and arithmetic, every reader with shuffling,
external sources of every restorable kind including a source object) and of every stateful operator of
the registry through its declared example (a new reader is fuzzed without being listed here), in both
format versions (version 2 written by today's code, version 1 from ``tests/golden/v1``), are decoded,
their payload fields mutated (counters, positions, operator lists, state values of every kind, digests,
sizes, batch size, seed, fingerprint) and re-sealed with a valid checksum. Each mutated checkpoint is
restored in place (into a pipeline that ran some steps, batches prefetched) and by the constructor, and
its outcome classified:

- "refused": a :class:`pipestate.CheckpointError` both ways, and the pipeline continues exactly as
  before the call, with the same checkpoints;
- "restored": accepted both ways, and the pipeline continues exactly as the state the checkpoint
  encodes: the same batches as the pipeline constructed with ``checkpoint=`` the same bytes, as a fresh
  pipeline restored from its own ``checkpoint()`` (which must describe the decoded position and states),
  and as a pipeline that ran to that position (whose state must then be the restored one: a state no run
  produces is never accepted); "restored, too far to run to" when the position is past ``RUN_TO_LIMIT``;
  "restored past an epoch end only a callable source knows" when no run reaches the position because a
  callable source taking an index ends its epochs earlier (pipestate cannot know where without calling
  it; DALI cannot either);
- the classes that must never happen (:data:`NEVER`): "refused but pipeline changed" (a half-applied
  restore), in place and constructor disagreeing, another position or state restored, a continuation that
  differs, a state no run produces, and any other exception (or a hang: the test's timeout).

The test asserts on every class: none of :data:`NEVER`, some "refused", every checkpoint classified.
The default run checks a fast sample; ``pytest --long`` checks at least 10,000 mutated checkpoints.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipestate import CheckpointError, PipestateError, fn, pipeline_def
from pipestate import checkpoint as ckpt
from pipestate._proto.pipestate.v1 import checkpoint_pb2 as pb1
from pipestate._proto.pipestate.v2 import checkpoint_pb2 as pb2
from pipestate.checkpoint import codec
from pipestate.checkpoint.v1 import ExternalSourceState, ReaderState, RngState
from pipestate.operators import REGISTRY
from pipestate.operators.external_source import ExternalSource
from pipestate.operators.readers._base import Reader
from pipestate.pipeline import Pipeline
from pipestate.testing import END_OF_EPOCH, assert_events_equal, example_pipeline, example_setup
from tests.golden import pipelines as golden

GOLDEN_V1 = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden", "v1")
RECORDED = 14  # steps of the reference run whose checkpoints are mutated
AFTER = 4  # steps compared after each restore
RUN_TO_LIMIT = 40  # positions up to this many batches are also reached by running
FAST_EXAMPLES = 25  # per pipeline and format version in the default run (12 cases + the stateful operators)
LONG_EXAMPLES = 850  # with --long: (12 cases + one per stateful operator) x 850, at least 10,200


# ---- pipelines of the version-2 cases (the golden ones are used for both versions) -------------------
class Ticker:
    """A source object with ``state()``/``restore()`` that checks its bytes (8 bytes: the next value)."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> list[np.ndarray]:
        batch = [np.array([self.n, j], dtype=np.int64) for j in range(golden.BATCH)]
        self.n += 1
        return batch

    def state(self) -> bytes:
        return self.n.to_bytes(8, "little")

    def restore(self, data: bytes) -> None:
        if len(data) != 8 or int.from_bytes(data, "little") >= 2**62:
            raise ValueError(f"a Ticker state is 8 bytes holding a value below 2**62, not {data!r}")
        self.n = int.from_bytes(data, "little")


SEQUENCE = [np.full((golden.BATCH, 1), 100 + i, np.int32) for i in range(5)]  # 5 batches per epoch
SAMPLES = [np.array([i, -i], np.int16) for i in range(golden.BATCH * 7)]  # 7 batches per epoch


def _generator() -> Iterator[list[np.ndarray]]:
    for i in range(9):
        yield [np.array([i * 10 + j], np.float32) for j in range(golden.BATCH)]


@pipeline_def(batch_size=golden.BATCH, num_threads=2, seed=77, enable_checkpointing=True, prefetch_queue_depth=3)
def sources():
    """Sources that end the epoch (a sequence, samples, a generator) and a checked source object."""
    seq = fn.external_source(source=SEQUENCE, name="seq")
    samples = fn.external_source(source=SAMPLES, batch=False, name="samples")
    gen = fn.external_source(source=_generator, name="gen")
    tick = fn.external_source(source=Ticker(), name="tick")
    return seq + 1, samples * 2, gen - fn.random.uniform(range=[0.0, 1.0]), tick


@pipeline_def(batch_size=3, num_threads=2, seed=5, enable_checkpointing=True)
def sharded_files():
    """fn.readers.file, one shard of three with padding and a shuffle buffer, and a random choice."""
    data, label = fn.readers.file(
        file_root="data/files",
        random_shuffle=True,
        initial_fill=4,
        num_shards=3,
        shard_id=2,
        pad_last_batch=True,
    )
    return data, label + fn.random.choice(7)


V2_PIPELINES: dict[str, Callable[..., Pipeline]] = {
    "random_ops": golden.random_ops,
    "file_reader": golden.file_reader,
    "numpy_reader": golden.numpy_reader,
    "tfrecord_reader": golden.tfrecord_reader,
    "external_sources": golden.external_sources,
    "sources": sources,
    "sharded_files": sharded_files,
}
# Every stateful operator of the registry, through its declared example (a new reader is fuzzed without
# being listed here); its dataset is written to a scratch directory.
STATEFUL_OPS = sorted(t for t, cls in REGISTRY.items() if cls.stateful)
OP_CASES = [f"op:{t}" for t in STATEFUL_OPS]
V1_PIPELINES = ("random_ops", "file_reader", "numpy_reader", "tfrecord_reader", "external_sources")
CASES = [("v2", name) for name in [*V2_PIPELINES, *OP_CASES]] + [("v1", name) for name in V1_PIPELINES]
SOURCE_OBJECTS = ("counter", "tick")  # operators whose state includes a source object's own bytes
# also fuzzed into pipelines built without a seed
UNSEEDED = ("random_ops", "external_sources", "sources", *OP_CASES)
_SCRATCH: list[str] = []  # the directory the operators' examples write their datasets to (made once)
_SETUP_ARGS: dict[str, dict | None] = {}


@contextlib.contextmanager
def in_case_dir(name: str) -> Iterator[None]:
    """The reader pipelines use paths relative to tests/golden/v1; the operators' examples to a scratch
    directory holding their datasets."""
    before = os.getcwd()
    if name.startswith("op:"):
        if not _SCRATCH:
            _SCRATCH.append(tempfile.mkdtemp(prefix="pipestate-fuzz-"))
            atexit.register(shutil.rmtree, _SCRATCH[0], True)
        os.chdir(_SCRATCH[0])
    else:
        os.chdir(GOLDEN_V1)
    try:
        yield
    finally:
        os.chdir(before)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """The generator source warns (at build, and again when a restore adopts another seed) that it is
    restored by replaying."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "external source .* cannot be checkpointed by position", UserWarning)
        yield


def make(name: str, **options: Any) -> Pipeline:
    with quiet():
        if name.startswith("op:"):
            op_type = name[len("op:") :]
            if op_type not in _SETUP_ARGS:
                _SETUP_ARGS[op_type] = example_setup(REGISTRY[op_type].EXAMPLE)
            return example_pipeline(op_type, setup_args=_SETUP_ARGS[op_type], **options)
        return V2_PIPELINES[name](**options)


# ---- running and comparing --------------------------------------------------------------------------
def record(pipe: Pipeline, steps: int) -> tuple[list[Any], list[bytes]]:
    """Like :func:`pipestate.testing.record`, but a pipestate error ends the record as an event."""
    events: list[Any] = []
    checkpoints: list[bytes] = []
    for _ in range(steps):
        try:
            outputs = pipe.run()
        except StopIteration:
            pipe.reset()
            events.append(END_OF_EPOCH)
        except PipestateError as exc:
            events.append(f"error: {type(exc).__name__}: {exc}")
            break
        else:
            events.append(tuple([np.array(s, copy=True) for s in out] for out in outputs))
        checkpoints.append(pipe.checkpoint())
    return events, checkpoints


class Reference:
    """An uninterrupted run of one pipeline: its checkpoints after every step and what followed them."""

    def __init__(self, name: str) -> None:
        self.name = name
        pipe = make(name)
        self.seed = pipe.seed
        self.checkpoints = [pipe.checkpoint()]
        events, checkpoints = record(pipe, RECORDED + AFTER)
        pipe.close()
        self.events = events
        self.checkpoints += checkpoints  # checkpoints[k]: after k steps

    def after(self, k: int) -> list[Any]:
        return self.events[k : k + AFTER]


_REFERENCES: dict[str, Reference] = {}


def reference(name: str) -> Reference:
    if name not in _REFERENCES:
        _REFERENCES[name] = Reference(name)
    return _REFERENCES[name]


def run_to(name: str, iteration: int, epoch: int, in_epoch: int, **options: Any) -> Pipeline | None:
    """A pipeline that ran to the position (batches over all epochs, epoch, batches in it), or None if
    no sequence of ``run()`` and ``reset()`` reaches it (epochs are filled greedily, which reaches every
    reachable position of these pipelines)."""
    if epoch == 0 and iteration != in_epoch:
        return None
    pipe = make(name, **options)
    done, epochs = 0, 0
    ok = True
    while done < iteration - in_epoch:
        try:
            pipe.run()
            done += 1
        except StopIteration:
            pipe.reset()
            epochs += 1
            if epochs >= epoch:  # the batches before this epoch do not fit in the epochs before it
                ok = False
                break
    while ok and epochs < epoch:
        pipe.reset()
        epochs += 1
    for _ in range(in_epoch if ok else 0):
        try:
            pipe.run()
        except StopIteration:
            ok = False
            break
    if not ok:
        pipe.close()
        return None
    return pipe


def semantic_states(data: ckpt.CheckpointData) -> list[Any]:
    """The decoded states of stateful operators in today's plain-data form (version 1 converted)."""
    out = []
    for record_ in data.operators:
        state = record_.state
        if isinstance(state, RngState) or not record_.has_state:
            continue
        if isinstance(state, ReaderState):
            state = {"epoch": state.epoch, "consumed": state.consumed, "dataset_digest": state.dataset_digest}
        elif isinstance(state, ExternalSourceState):
            state = {"epoch": state.epoch, "iteration": state.iteration}
            if record_.state.source_state is not None:
                state["source_state"] = record_.state.source_state
        out.append(state)
    return out


def same_state(claimed: Any, restored: Any) -> bool:
    """Whether a restored state is the one a checkpoint claimed (a reader's dataset digest 0 means
    "not recorded", as in checkpoints of early releases)."""
    if isinstance(claimed, dict) and claimed.get("dataset_digest") == 0 and isinstance(restored, dict):
        claimed = {**claimed, "dataset_digest": restored.get("dataset_digest")}
    return claimed == restored


def without_source_states(blob: bytes) -> list[Any]:
    """A checkpoint's position and states, source objects' own bytes left out (pipestate cannot check
    those: a source object that accepts other bytes continues from them)."""
    data = ckpt.decode(blob)
    states = [{k: v for k, v in s.items() if k != "source_state"} for s in semantic_states(data)]
    return [data.iteration, data.epoch, data.iteration_in_epoch, states]


# ---- outcome classes --------------------------------------------------------------------------------
class Outcome(Exception):
    """Ends the check of one checkpoint with its outcome class and what was seen."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind, self.detail = kind, detail


REFUSED = "refused"  # in place and by the constructor; the pipeline continues exactly as before
RESTORED = "restored"  # in place and by the constructor, continuing alike, as a run to that position
RESTORED_FAR = "restored, too far to run to"  # the same, past RUN_TO_LIMIT: not compared with a run
# the same, at a position past an epoch's end that only a callable source knows (it raises StopIteration
# when called there): pipestate cannot refuse it without calling the source
RESTORED_UNCHECKABLE = "restored past an epoch end only a callable source knows"
ALLOWED = (REFUSED, RESTORED, RESTORED_FAR, RESTORED_UNCHECKABLE)
NEVER = (
    "refused but pipeline changed",  # a refused restore half-applied (issue 15)
    "refused in place, accepted by the constructor",
    "accepted in place, refused by the constructor",
    "restored another position or state than the checkpoint's",
    "restored, but continues differently",  # from the constructor's, or its own checkpoint's restore
    "restored a state no run produces",
    "another exception",  # not a CheckpointError, from restore() or from the runs after it
)


def ends_epochs_by_itself(pipe: Pipeline) -> bool:
    """Whether a callable source taking an index ends the pipeline's epochs (its length is unknown)."""
    return any(
        op.type == "external_source" and op.kind == "call" and op.arity == 1 and not op.stateful_source
        for op in pipe._graph.ops
    )


def expect(ok: bool, kind: str, detail: str) -> None:
    if not ok:
        raise Outcome(kind, detail)


def differences(expected: list[Any], got: list[Any], where: str) -> str | None:
    """What differs between two event lists (None: nothing), errors shown."""
    try:
        assert_events_equal(expected, got, where)
    except AssertionError as exc:
        errors = [e for e in expected + got if isinstance(e, str) and e != END_OF_EPOCH]
        return f"{exc} {errors or ''}"
    return None


def check_restore(name: str, blob: bytes, ran: int, unseeded: bool) -> tuple[str, str]:
    """Restore one (mutated) checkpoint into a pipeline that ran ``ran`` steps (in place, with batches
    prefetched) and into a new one, and classify what happened.

    Returns:
        (outcome class, what was seen): one of :data:`ALLOWED` or :data:`NEVER`.
    """
    try:
        return _check_restore(name, blob, ran, unseeded)
    except Outcome as outcome:
        return outcome.kind, outcome.detail
    except AssertionError:  # the test itself (e.g. the reference run changed)
        raise
    except Exception as exc:  # noqa: BLE001 - classified: "another exception" must never happen
        return "another exception", f"{type(exc).__name__}: {exc}"


def _check_restore(name: str, blob: bytes, ran: int, unseeded: bool) -> tuple[str, str]:
    ref = reference(name)
    options = {"seed": None} if unseeded else {}
    pipes: list[Pipeline] = []
    try:
        pipe = make(name, **options)
        pipes.append(pipe)
        before_events, _ = record(pipe, ran)
        if not unseeded:
            assert_events_equal(ref.events[:ran], before_events, "reference")
        before = pipe.checkpoint()
        try:
            with quiet():
                pipe.restore(blob)
        except CheckpointError as exc:
            _check_refused(name, blob, pipe, pipes, before, ran, unseeded, options, exc)
            return REFUSED, str(exc)
        return _check_restored(name, blob, pipe, pipes, options)
    finally:
        for p in pipes:
            p.close()


def _check_refused(name, blob, pipe, pipes, before, ran, unseeded, options, exc) -> None:
    """All or nothing: the pipeline continues exactly as before the call; the constructor refuses too."""
    changed = "refused but pipeline changed"
    expect(pipe.checkpoint() == before, changed, f"its checkpoint() changed ({exc})")
    if unseeded:  # the same pipeline with its random seed given explicitly
        twin = make(name, checkpoint=before, seed=pipe.seed)
        pipes.append(twin)
        expected = record(twin, AFTER)
    else:
        ref = reference(name)
        expected = (ref.after(ran), ref.checkpoints[ran + 1 : ran + 1 + AFTER])
    try:
        got = record(pipe, AFTER)
    except Exception as error:  # noqa: BLE001 - e.g. reset() rewinding an operator left elsewhere
        raise Outcome(changed, f"continuing raised {type(error).__name__}: {error} ({exc})") from None
    differ = differences(expected[0], got[0], "after the refused restore")
    expect(differ is None, changed, f"{differ} ({exc})")
    expect(got[1] == expected[1], changed, f"the checkpoints after it differ ({exc})")
    try:
        pipes.append(make(name, checkpoint=blob, **options))
    except CheckpointError:
        return
    raise Outcome("refused in place, accepted by the constructor", str(exc))


def _check_restored(name, blob, pipe, pipes, options) -> tuple[str, str]:
    """The pipeline continues as the state the checkpoint encodes: the constructor's, its own checkpoint's,
    a run to that position."""
    restored = pipe.checkpoint()
    claimed, now = ckpt.decode(blob), ckpt.decode(restored)
    position = (claimed.iteration, claimed.epoch, claimed.iteration_in_epoch)
    other = "restored another position or state than the checkpoint's"
    expect((now.iteration, now.epoch, now.iteration_in_epoch) == position, other, f"{position} -> {now}")
    expect((claimed.batch_size, claimed.seed) == (now.batch_size, now.seed), other, "batch size or seed")
    # a source object's own bytes are its business: one that accepts other bytes continues from them
    claimed_states, now_states = without_source_states(blob)[3], without_source_states(restored)[3]
    expect(
        len(claimed_states) == len(now_states) and all(map(same_state, claimed_states, now_states)),
        other,
        f"restored {now_states!r}, the checkpoint holds {claimed_states!r}",
    )
    try:
        new = make(name, checkpoint=blob, **options)
    except CheckpointError as exc:
        raise Outcome("accepted in place, refused by the constructor", str(exc)) from None
    pipes.append(new)
    differently = "restored, but continues differently"
    expect(new.checkpoint() == restored, differently, "the constructor's checkpoint() differs")
    again = make(name, checkpoint=restored, **options)
    pipes.append(again)
    events, checkpoints = record(pipe, AFTER)
    for other_pipe, where in ((new, "constructed with checkpoint="), (again, "restored from its checkpoint()")):
        other_events, other_checkpoints = record(other_pipe, AFTER)
        differ = differences(events, other_events, where)
        expect(differ is None, differently, str(differ))
        expect(other_checkpoints == checkpoints, differently, f"{where}: checkpoints differ")
    for event in events:  # errors after a restore: the sample counter's limit, or a source object's own
        if isinstance(event, str) and event != END_OF_EPOCH:
            expected_error = "overflow" in event or any(f"operator '{n}'" in event for n in SOURCE_OBJECTS)
            expect(expected_error, "another exception", f"after the restore: {event}")
    if claimed.iteration > RUN_TO_LIMIT or claimed.epoch > RUN_TO_LIMIT:
        return RESTORED_FAR, f"position {position}"
    # a pipeline that ran to that position: the state must be its state, the batches its batches
    ran_to = run_to(name, *position, seed=now.seed)
    no_run = "restored a state no run produces"
    if ran_to is None and ends_epochs_by_itself(pipe):
        return RESTORED_UNCHECKABLE, f"position {position}"
    expect(ran_to is not None, no_run, f"position {position}: no run reaches it")
    pipes.append(ran_to)
    expect(
        without_source_states(ran_to.checkpoint()) == without_source_states(restored),
        no_run,
        f"at {position}: a run has {ckpt.decode(ran_to.checkpoint())}",
    )
    if ran_to.checkpoint() == restored:
        ran_events, ran_checkpoints = record(ran_to, AFTER)
        differ = differences(ran_events, events, f"ran to {position}")
        expect(differ is None and ran_checkpoints == checkpoints, differently, f"from a run to it: {differ}")
    return RESTORED, f"position {position}"


# ---- mutations ----------------------------------------------------------------------------------------
_EDGES = [
    0,
    1,
    2,
    3,
    2**31 - 1,
    2**31,
    2**32 - 1,
    2**32,
    2**53 + 1,
    2**62,
    2**63 - 2,
    2**63 - 1,
    2**63,
    2**64 - 2,
    2**64 - 1,
]


def u64_near(value: int) -> st.SearchStrategy[int]:
    near = st.integers(max(0, value - 3), min(2**64 - 1, value + 3))
    return st.one_of(near, st.sampled_from(_EDGES), st.integers(0, 2**64 - 1), st.integers(0, 40))


def i64() -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from([-(2**63), -1, 0, 1, 2**63 - 1]), st.integers(-(2**63), 2**63 - 1))


def _as_list(items: list[pb2.Value]) -> pb2.Value:
    message = pb2.Value()
    message.list.SetInParent()
    message.list.items.extend(items)
    return message


def _as_map(entries: list[tuple[str, pb2.Value]]) -> pb2.Value:
    message = pb2.Value()
    message.map.SetInParent()
    for key, value in entries:  # unsorted and possibly duplicate keys
        message.map.entries.add(key=key, value=value)
    return message


def value_messages() -> st.SearchStrategy[pb2.Value]:
    """Arbitrary ``Value`` messages: every kind, wrong-field integers, empty values, deep nesting."""

    def scalar(kind: str, value: Any) -> pb2.Value:
        message = pb2.Value()
        setattr(message, kind, value)
        return message

    leaves = st.one_of(
        st.just(pb2.Value(none=True)),
        st.booleans().map(lambda b: scalar("bool", b)),
        st.one_of(i64(), st.integers(0, 50)).map(lambda v: scalar("int", v)),
        st.integers(0, 2**64 - 1).map(lambda v: scalar("uint", v)),  # below 2**63 is a wrong-field integer
        st.floats().map(lambda v: scalar("float", v)),
        st.text(max_size=12).map(lambda v: scalar("str", v)),
        st.binary(max_size=12).map(lambda v: scalar("bytes", v)),
        st.just(pb2.Value()),  # no kind set
    )

    keys = st.sampled_from(["epoch", "consumed", "dataset_digest", "iteration", "source_state", "", "x"])

    def containers(inner: st.SearchStrategy[pb2.Value]) -> st.SearchStrategy[pb2.Value]:
        return st.one_of(
            st.lists(inner, max_size=3).map(_as_list), st.lists(st.tuples(keys, inner), max_size=4).map(_as_map)
        )

    return st.recursive(leaves, containers, max_leaves=8)


def nested(depth: int, leaf: pb2.Value) -> pb2.Value:
    message = leaf
    for _ in range(depth):
        outer = pb2.Value()
        outer.list.items.append(message)
        message = outer
    return message


def deep_value_bytes(depth: int) -> bytes:
    """A serialized Value nested ``depth`` lists deep (too deep to build as a message: protobuf refuses)."""
    body = b"\x18\x02"  # int: 1
    for _ in range(depth):
        item = b"\x0a" + codec._varint(len(body)) + body
        body = b"\x42" + codec._varint(len(item)) + item
    return body


def value_nodes(message: pb2.Value) -> list[pb2.Value]:
    """Every Value inside ``message`` (itself included)."""
    out = [message]
    kind = message.WhichOneof("kind")
    if kind == "list":
        for item in message.list.items:
            out += value_nodes(item)
    elif kind == "map":
        for entry in message.map.entries:
            out += value_nodes(entry.value)
    return out


def mutate_value(data: st.DataObject, state: pb2.Value, other_states: list[pb2.Value]) -> None:
    """Mutate one node of a state value in place."""
    node = data.draw(st.sampled_from(value_nodes(state)))
    kind = node.WhichOneof("kind")
    action = data.draw(st.sampled_from(["replace", "int", "deep", "from_other", "map", "clear"]))
    if action == "int" or (action == "map" and kind != "map"):
        value = data.draw(st.one_of(st.sampled_from(_EDGES), st.integers(-(2**63), 2**64 - 1)))
        node.Clear()
        if value >= 2**63 or (value >= 0 and data.draw(st.booleans())):
            node.uint = value  # below 2**63: an integer in the wrong field
        else:
            node.int = value
    elif action == "replace":
        node.CopyFrom(data.draw(value_messages()))
    elif action == "deep":
        node.CopyFrom(nested(data.draw(st.sampled_from([30, 31, 32, 33, 40])), pb2.Value(int=1)))
    elif action == "from_other" and other_states:
        node.CopyFrom(data.draw(st.sampled_from(other_states)))
    elif action == "map" and node.map.entries:
        entries = node.map.entries
        i = data.draw(st.integers(0, len(entries) - 1))
        how = data.draw(st.sampled_from(["drop", "rename", "duplicate", "reorder"]))
        if how == "drop":
            del entries[i]
        elif how == "rename":
            entries[i].key = data.draw(st.sampled_from(["epoch", "consumed", "iteration", "bogus", ""]))
        elif how == "duplicate":
            entries.add().CopyFrom(entries[i])
        else:
            items = [pb2.MapEntry(key=e.key, value=e.value) for e in entries]
            items.reverse()
            del entries[:]
            entries.extend(items)
    elif action == "clear":
        node.Clear()


def mutate_operators(data: st.DataObject, operators: Any, names: list[str]) -> None:
    """Drop, duplicate, reorder or rename operator entries (a repeated message field, in place)."""
    if not len(operators):
        return
    entries = [type(operators[0])() for _ in operators]
    for entry, op in zip(entries, operators):
        entry.CopyFrom(op)
    i = data.draw(st.integers(0, len(entries) - 1))
    how = data.draw(st.sampled_from(["drop", "duplicate", "swap", "rename", "retype", "digest", "args"]))
    if how == "drop":
        del entries[i]
    elif how == "duplicate":
        entries.insert(data.draw(st.integers(0, len(entries))), entries[i])
    elif how == "swap":
        j = data.draw(st.integers(0, len(entries) - 1))
        entries[i], entries[j] = entries[j], entries[i]
    elif how == "rename":
        entries[i].name = data.draw(st.one_of(st.sampled_from(names), st.text(max_size=10)))
    elif how == "retype":
        entries[i].type = data.draw(st.sampled_from(["readers.file", "external_source", "random.uniform", "x"]))
    elif how == "digest":
        entries[i].digest = data.draw(st.integers(0, 2**64 - 1))
    elif isinstance(entries[i], pb2.OperatorState):
        entries[i].arg_digests[data.draw(st.sampled_from(["range", "seed", "zzz"]))] = data.draw(
            st.integers(0, 2**32 - 1)
        )
    else:
        entries[i].arg_digests.append(data.draw(st.integers(0, 2**32 - 1)))
    del operators[:]
    operators.extend(entries)


def mutate_payload_fields(data: st.DataObject, payload: Any, others: list[Any]) -> None:
    """The mutations common to both versions: counters, sizes, seed, fingerprint, operator lists."""
    what = data.draw(
        st.sampled_from(
            [
                "iteration",
                "epoch",
                "iteration_in_epoch",
                "counters_from_other",
                "batch_size",
                "seed",
                "fingerprint",
                "library_version",
                "operators",
            ]
        )
    )
    if what in ("iteration", "epoch", "iteration_in_epoch"):
        setattr(payload, what, data.draw(u64_near(getattr(payload, what))))
    elif what == "counters_from_other":
        other = data.draw(st.sampled_from(others))
        for field in data.draw(st.lists(st.sampled_from(["iteration", "epoch", "iteration_in_epoch"]), min_size=1)):
            setattr(payload, field, getattr(other, field))
    elif what == "batch_size":
        payload.batch_size = data.draw(st.one_of(st.sampled_from([0, 1, 3, 5, 2**32 - 1]), st.integers(0, 2**32 - 1)))
    elif what == "seed":
        payload.seed = data.draw(i64())
    elif what == "fingerprint":
        fp = bytearray(payload.fingerprint)
        if fp and data.draw(st.booleans()):
            fp[data.draw(st.integers(0, len(fp) - 1))] ^= 1 << data.draw(st.integers(0, 7))
            payload.fingerprint = bytes(fp)
        else:
            payload.fingerprint = data.draw(st.binary(max_size=20))
    elif what == "library_version":
        payload.library_version = data.draw(st.text(max_size=10))
    else:
        mutate_operators(data, payload.operators, [op.name for op in payload.operators])


def mutate_v2(data: st.DataObject, payload: pb2.Payload, others: list[pb2.Payload], raw: dict[int, bytes]) -> None:
    if data.draw(st.booleans()) or not payload.operators:
        mutate_payload_fields(data, payload, others)
        return
    i = data.draw(st.integers(0, len(payload.operators) - 1))
    op = payload.operators[i]
    other_states = [
        o.operators[j].state for o in others for j in range(len(o.operators)) if o.operators[j].HasField("state")
    ]
    action = data.draw(st.sampled_from(["node", "node", "node", "clear", "replace", "very deep"]))
    if action == "node" and op.HasField("state"):
        mutate_value(data, op.state, other_states)
    elif action == "clear":
        op.ClearField("state")
    elif action == "very deep":
        op.ClearField("state")
        raw[i] = deep_value_bytes(data.draw(st.sampled_from([50, 63, 64, 65, 99, 100, 101, 200, 5000])))
    else:
        op.state.CopyFrom(data.draw(st.one_of(value_messages(), st.sampled_from(other_states or [pb2.Value()]))))


def mutate_v1(data: st.DataObject, payload: pb1.Payload, others: list[pb1.Payload], raw: dict[int, bytes]) -> None:
    if data.draw(st.booleans()) or not payload.operators:
        mutate_payload_fields(data, payload, others)
        return
    op = payload.operators[data.draw(st.integers(0, len(payload.operators) - 1))]
    kind = data.draw(st.sampled_from(["rng", "reader", "external_source", "custom", "none", "field"]))
    current = op.WhichOneof("state")
    if kind == "field" and current in ("rng", "reader", "external_source"):
        message = getattr(op, current)
        field = data.draw(st.sampled_from([f.name for f in message.DESCRIPTOR.fields]))
        if field == "source_state":
            if data.draw(st.booleans()):
                message.ClearField("source_state")
            else:
                message.source_state = data.draw(st.binary(max_size=12))
        else:
            setattr(message, field, data.draw(u64_near(getattr(message, field))))
    elif kind == "none":
        op.ClearField(current) if current else None
    elif kind == "custom":
        op.custom = data.draw(st.binary(max_size=16))
    elif kind in ("rng", "reader", "external_source"):
        message = getattr(op, kind)
        message.SetInParent()
        for field in message.DESCRIPTOR.fields:
            if field.name == "source_state":
                if data.draw(st.booleans()):
                    message.source_state = data.draw(st.binary(max_size=12))
            else:
                setattr(message, field.name, data.draw(u64_near(getattr(message, field.name))))


def mutated(data: st.DataObject, version: str, base: bytes, others: list[bytes]) -> bytes:
    """``base`` with one to three payload mutations, re-sealed with a valid checksum."""
    number, payload_bytes = ckpt.open_envelope(base)
    module, mutate = (pb2, mutate_v2) if version == "v2" else (pb1, mutate_v1)
    payload = module.Payload.FromString(payload_bytes)
    parsed_others = [module.Payload.FromString(ckpt.open_envelope(o)[1]) for o in others]
    raw: dict[int, bytes] = {}  # operator index -> a serialized state too deep to build as a message
    for _ in range(data.draw(st.integers(1, 3))):
        mutate(data, payload, parsed_others, raw)
    raw = {i: state for i, state in raw.items() if i < len(payload.operators)}
    if not raw:
        return ckpt.seal(number, payload.SerializeToString(deterministic=True))
    entries = []
    for i, op in enumerate(payload.operators):
        entry = op.SerializeToString(deterministic=True)
        if i in raw:  # fields may come in any order: the state field is appended
            entry += b"\x2a" + codec._varint(len(raw[i])) + raw[i]
        entries.append(b"\x42" + codec._varint(len(entry)) + entry)
    del payload.operators[:]
    return ckpt.seal(number, payload.SerializeToString(deterministic=True) + b"".join(entries))


def describe(blob: bytes) -> str:
    try:
        return repr(ckpt.decode(blob))
    except CheckpointError as exc:
        return f"a checkpoint that does not decode ({exc})"


def fuzz_examples(config: pytest.Config) -> int:
    return LONG_EXAMPLES if config.getoption("--long", default=False) else FAST_EXAMPLES


# ---- the tests ----------------------------------------------------------------------------------------
@pytest.mark.timeout(3600)
@pytest.mark.parametrize(("version", "name"), CASES, ids=[f"{v}-{n}" for v, n in CASES])
def test_mutated_checkpoints_restore_exactly_or_raise_checkpoint_errors(version, name, request):
    outcomes = dict.fromkeys(ALLOWED + NEVER, 0)
    seen: dict[str, str] = {}  # the first checkpoint of each outcome class, described
    with in_case_dir(name):
        ref = reference(name)
        if version == "v1":
            with open(f"{name}.cpt", "rb") as f:
                bases = [f.read()]
            others = bases
        else:
            bases = ref.checkpoints[: RECORDED + 1]
            others = bases

        @settings(
            max_examples=fuzz_examples(request.config),
            deadline=None,
            derandomize=not request.config.getoption("--long", default=False),
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(data=st.data())
        def fuzz(data: st.DataObject) -> None:
            k = data.draw(st.integers(0, len(bases) - 1), label="base")
            blob = mutated(data, version, bases[k], others)
            ran = data.draw(st.integers(0, RECORDED), label="steps run before restoring")
            unseeded = name in UNSEEDED and data.draw(st.booleans(), label="unseeded")
            kind, detail = check_restore(name, blob, ran, unseeded)
            outcomes[kind] += 1
            if kind not in seen:
                seen[kind] = f"base {k}, {ran} steps run, unseeded={unseeded}: {detail}\n  {describe(blob)}"

        fuzz()
    print(f"{version}/{name}: { {k: n for k, n in outcomes.items() if n} }")  # noqa: T201 - shown with -s
    assert set(outcomes) == set(ALLOWED + NEVER), f"an outcome outside the classes: {outcomes}"
    never = {kind: seen[kind] for kind in NEVER if outcomes[kind]}
    assert not never, "outcomes that must never happen:\n" + "\n".join(f"{k}: {v}" for k, v in never.items())
    assert outcomes[REFUSED] > 0, outcomes  # the mutations reach the checks
    assert sum(outcomes.values()) == fuzz_examples(request.config), outcomes  # every checkpoint classified


@pytest.mark.parametrize(("version", "name"), CASES, ids=[f"{v}-{n}" for v, n in CASES])
def test_unmutated_checkpoints_restore(version, name):
    """Control: the checkpoints the fuzzer starts from restore, and continue as the reference run."""
    with in_case_dir(name):
        ref = reference(name)
        if version == "v1":
            with open(f"{name}.cpt", "rb") as f:
                bases = {7: f.read()}  # the goldens were written after 7 steps
        else:
            bases = {k: ref.checkpoints[k] for k in (0, 1, 5, 6, RECORDED)}  # 5, 6: around an epoch end
        for k, blob in bases.items():
            assert check_restore(name, blob, ran=3, unseeded=False)[0] == RESTORED
            pipe = make(name, checkpoint=blob)
            got, _ = record(pipe, AFTER)
            pipe.close()
            assert_events_equal(ref.after(k), got, f"{version}/{name} at {k}")


def _restore_without_rollback(self, states, at, previous):  # the defect of issue 9, for the control test
    for op, state in zip(self.stateful, states):
        op.restore(state, at)


@pytest.mark.parametrize(
    "name", ["file_reader", *(case for case in OP_CASES if issubclass(REGISTRY[case[3:]], Reader))]
)
def test_the_oracle_classifies_a_half_restore(name, monkeypatch):
    """Control: a reader that checks nothing and moves before refusing, without a rollback, is classified
    "refused but pipeline changed"."""
    original = Reader.check_state

    def moves_then_fails(self, state, at):
        self.epoch, self.consumed = state["epoch"], state["consumed"]
        original(self, state, at)
        if at.from_checkpoint:
            raise CheckpointError("refused after moving")

    with in_case_dir(name):
        good = reference(name).checkpoints[5]
        monkeypatch.setattr(Reader, "check_state", lambda self, state, at: None)
        monkeypatch.setattr(Reader, "restore", moves_then_fails)
        monkeypatch.setattr("pipestate.runtime.Runtime.restore", _restore_without_rollback)
        assert check_restore(name, good, ran=2, unseeded=False)[0] == "refused but pipeline changed"


def test_the_oracle_classifies_a_generator_replaced_before_a_refusal(monkeypatch):
    """Control: the defect of issue 15 (the generator replaced, then the replay refused) is classified
    "refused but pipeline changed"."""

    def replaces_then_fails(self, batches):
        self.iterator = self._new_iterator()
        raise CheckpointError("refused after replacing the iterator")

    with in_case_dir("sources"):
        good = reference("sources").checkpoints[3]
        monkeypatch.setattr(ExternalSource, "_replayed", replaces_then_fails)
        assert check_restore("sources", good, ran=2, unseeded=False)[0] == "refused but pipeline changed"


def test_the_oracle_classifies_other_exceptions(monkeypatch):
    """Control: an operator raising something else than a CheckpointError is classified as such."""
    with in_case_dir("file_reader"):
        good = reference("file_reader").checkpoints[5]
        monkeypatch.setattr(Reader, "check_state", lambda self, state, at: None)
        monkeypatch.setattr("pipestate.runtime.Runtime.restore", _restore_without_rollback)
        monkeypatch.setattr(Reader, "restore", lambda self, state, at: [][0])
        kind, detail = check_restore("file_reader", good, ran=2, unseeded=False)
    assert kind == "another exception" and "IndexError" in detail
