from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Checkpoint(_message.Message):
    __slots__ = ("magic", "format_version", "payload_crc32", "payload")
    MAGIC_FIELD_NUMBER: _ClassVar[int]
    FORMAT_VERSION_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_CRC32_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    magic: int
    format_version: int
    payload_crc32: int
    payload: bytes
    def __init__(self, magic: _Optional[int] = ..., format_version: _Optional[int] = ..., payload_crc32: _Optional[int] = ..., payload: _Optional[bytes] = ...) -> None: ...

class Payload(_message.Message):
    __slots__ = ("library_version", "fingerprint", "batch_size", "seed", "iteration", "epoch", "iteration_in_epoch", "operators", "iterator_data")
    LIBRARY_VERSION_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    ITERATION_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    ITERATION_IN_EPOCH_FIELD_NUMBER: _ClassVar[int]
    OPERATORS_FIELD_NUMBER: _ClassVar[int]
    ITERATOR_DATA_FIELD_NUMBER: _ClassVar[int]
    library_version: str
    fingerprint: bytes
    batch_size: int
    seed: int
    iteration: int
    epoch: int
    iteration_in_epoch: int
    operators: _containers.RepeatedCompositeFieldContainer[OperatorState]
    iterator_data: str
    def __init__(self, library_version: _Optional[str] = ..., fingerprint: _Optional[bytes] = ..., batch_size: _Optional[int] = ..., seed: _Optional[int] = ..., iteration: _Optional[int] = ..., epoch: _Optional[int] = ..., iteration_in_epoch: _Optional[int] = ..., operators: _Optional[_Iterable[_Union[OperatorState, _Mapping]]] = ..., iterator_data: _Optional[str] = ...) -> None: ...

class OperatorState(_message.Message):
    __slots__ = ("name", "type", "digest", "arg_digests", "rng", "reader", "external_source", "custom")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    ARG_DIGESTS_FIELD_NUMBER: _ClassVar[int]
    RNG_FIELD_NUMBER: _ClassVar[int]
    READER_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_SOURCE_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: str
    digest: int
    arg_digests: _containers.RepeatedScalarFieldContainer[int]
    rng: RngState
    reader: ReaderState
    external_source: ExternalSourceState
    custom: bytes
    def __init__(self, name: _Optional[str] = ..., type: _Optional[str] = ..., digest: _Optional[int] = ..., arg_digests: _Optional[_Iterable[int]] = ..., rng: _Optional[_Union[RngState, _Mapping]] = ..., reader: _Optional[_Union[ReaderState, _Mapping]] = ..., external_source: _Optional[_Union[ExternalSourceState, _Mapping]] = ..., custom: _Optional[bytes] = ...) -> None: ...

class RngState(_message.Message):
    __slots__ = ("key", "counter")
    KEY_FIELD_NUMBER: _ClassVar[int]
    COUNTER_FIELD_NUMBER: _ClassVar[int]
    key: int
    counter: int
    def __init__(self, key: _Optional[int] = ..., counter: _Optional[int] = ...) -> None: ...

class ReaderState(_message.Message):
    __slots__ = ("epoch", "consumed", "dataset_digest")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    CONSUMED_FIELD_NUMBER: _ClassVar[int]
    DATASET_DIGEST_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    consumed: int
    dataset_digest: int
    def __init__(self, epoch: _Optional[int] = ..., consumed: _Optional[int] = ..., dataset_digest: _Optional[int] = ...) -> None: ...

class ExternalSourceState(_message.Message):
    __slots__ = ("epoch", "iteration", "source_state")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    ITERATION_FIELD_NUMBER: _ClassVar[int]
    SOURCE_STATE_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    iteration: int
    source_state: bytes
    def __init__(self, epoch: _Optional[int] = ..., iteration: _Optional[int] = ..., source_state: _Optional[bytes] = ...) -> None: ...
