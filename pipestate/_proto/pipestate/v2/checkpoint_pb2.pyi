from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

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
    __slots__ = ("name", "type", "digest", "arg_digests", "state")
    class ArgDigestsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    ARG_DIGESTS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: str
    digest: int
    arg_digests: _containers.ScalarMap[str, int]
    state: Value
    def __init__(self, name: _Optional[str] = ..., type: _Optional[str] = ..., digest: _Optional[int] = ..., arg_digests: _Optional[_Mapping[str, int]] = ..., state: _Optional[_Union[Value, _Mapping]] = ...) -> None: ...

class Value(_message.Message):
    __slots__ = ("none", "bool", "int", "uint", "float", "str", "bytes", "list", "map")
    NONE_FIELD_NUMBER: _ClassVar[int]
    BOOL_FIELD_NUMBER: _ClassVar[int]
    INT_FIELD_NUMBER: _ClassVar[int]
    UINT_FIELD_NUMBER: _ClassVar[int]
    FLOAT_FIELD_NUMBER: _ClassVar[int]
    STR_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    LIST_FIELD_NUMBER: _ClassVar[int]
    MAP_FIELD_NUMBER: _ClassVar[int]
    none: bool
    bool: bool
    int: int
    uint: int
    float: float
    str: str
    bytes: bytes
    list: ValueList
    map: ValueMap
    def __init__(self, none: _Optional[bool] = ..., bool: _Optional[bool] = ..., int: _Optional[int] = ..., uint: _Optional[int] = ..., float: _Optional[float] = ..., str: _Optional[str] = ..., bytes: _Optional[bytes] = ..., list: _Optional[_Union[ValueList, _Mapping]] = ..., map: _Optional[_Union[ValueMap, _Mapping]] = ...) -> None: ...

class ValueList(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Value]
    def __init__(self, items: _Optional[_Iterable[_Union[Value, _Mapping]]] = ...) -> None: ...

class ValueMap(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[MapEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[MapEntry, _Mapping]]] = ...) -> None: ...

class MapEntry(_message.Message):
    __slots__ = ("key", "value")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: Value
    def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Value, _Mapping]] = ...) -> None: ...
