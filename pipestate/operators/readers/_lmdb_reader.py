"""What the LMDB readers (``readers.caffe``, ``readers.caffe2``) share: the database as the reader's source,
per-record parsing on the worker threads, and closing."""

from __future__ import annotations

from collections.abc import Iterable

from pipestate.batch import Batch
from pipestate.operators.base import RunContext
from pipestate.operators.readers._base import Reader
from pipestate.operators.readers._lmdb import LMDBSource


class LMDBReader(Reader):
    """A reader of the records of LMDB databases (``path``) in key order; subclasses parse one record into its
    outputs (``_read``), the first an image (ragged) when ``image_available``."""

    def discover(self) -> tuple[int, Iterable[bytes]]:
        self.source = LMDBSource(list(self.args["path"]))
        return len(self.source), self.source.digest_parts()

    def read(self, ctx: RunContext, indices: list[int]) -> tuple[Batch, ...]:
        samples = self.read_chunks(ctx, self._read, indices)
        return tuple(
            Batch([s[k] for s in samples])
            if k == 0 and self.args["image_available"]
            else Batch.from_samples([s[k] for s in samples])
            for k in range(self.num_outputs)
        )

    def close(self) -> None:
        """Close the databases."""
        source = getattr(self, "source", None)
        if source is not None:
            source.close()
