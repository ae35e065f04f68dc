from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class Job(_message.Message):
    __slots__ = ("library_version", "fingerprint", "num_shards", "global_batch_size", "iteration", "epoch", "iteration_in_epoch", "reader", "reader_epoch", "reader_consumed", "shards")
    LIBRARY_VERSION_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    NUM_SHARDS_FIELD_NUMBER: _ClassVar[int]
    GLOBAL_BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    ITERATION_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    ITERATION_IN_EPOCH_FIELD_NUMBER: _ClassVar[int]
    READER_FIELD_NUMBER: _ClassVar[int]
    READER_EPOCH_FIELD_NUMBER: _ClassVar[int]
    READER_CONSUMED_FIELD_NUMBER: _ClassVar[int]
    SHARDS_FIELD_NUMBER: _ClassVar[int]
    library_version: str
    fingerprint: bytes
    num_shards: int
    global_batch_size: int
    iteration: int
    epoch: int
    iteration_in_epoch: int
    reader: str
    reader_epoch: int
    reader_consumed: int
    shards: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, library_version: _Optional[str] = ..., fingerprint: _Optional[bytes] = ..., num_shards: _Optional[int] = ..., global_batch_size: _Optional[int] = ..., iteration: _Optional[int] = ..., epoch: _Optional[int] = ..., iteration_in_epoch: _Optional[int] = ..., reader: _Optional[str] = ..., reader_epoch: _Optional[int] = ..., reader_consumed: _Optional[int] = ..., shards: _Optional[_Iterable[bytes]] = ...) -> None: ...
