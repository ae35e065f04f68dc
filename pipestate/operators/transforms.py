"""``fn.transforms.*``: affine transform matrices (translation, scale, rotation, shear, crop, combine).

Each operator produces, per sample, a float32 ``(ndim, ndim + 1)`` matrix ``[M | t]`` mapping a point ``p``
to ``M p + t`` (the format ``fn.coord_transform`` and ``fn.warp_affine`` take). Given an input transform
``T``, the output is this transform applied after ``T`` (``reverse_order=True``: before it); a sequence of
transforms (layout ``F**``, one matrix per frame) is transformed frame by frame. The arithmetic is DALI's,
in float32 (``_affine``), so the matrices are bit-identical to DALI's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from pipestate.batch import Batch
from pipestate.graph import DataNode
from pipestate.operators import _affine, _libm
from pipestate.operators import schema as sch
from pipestate.operators._kit import Sample, SampleOperator
from pipestate.operators.base import RunContext, register
from pipestate.operators.example import Example, Tensor
from pipestate.operators.schema import Arg

F32 = np.float32
_VEC = sch.Seq(sch.Float(), min_length=1, broadcast=True)
_REVERSE = Arg(
    "reverse_order",
    sch.Bool(),
    False,
    "False: apply this transform after the input transform; True: before it (ignored without an input)",
)
_TRANSFORM_INPUT = sch.Input(
    "transform",
    "A transform (ndim, ndim+1) or a sequence of them (F, ndim, ndim+1)",
    ("float32",),
    (2, 3),
    optional=True,
)


class _Flat(sch.Seq):
    """A list of floats whose per-sample values may be given as a matrix (read in row-major order)."""

    def check_samples(self, samples: Any, where: str) -> None:
        super().check_samples([np.asarray(s).reshape(-1) for s in samples], where)


def compose(matrix: np.ndarray, transform: np.ndarray, reverse: bool) -> np.ndarray:
    """This operator's ``(n+1, n+1)`` ``matrix`` combined with input ``transform`` (``(..., n, n+1)``)."""
    n = transform.shape[-1] - 1
    inner = _affine.homogeneous(transform)
    out = _affine.matmul(inner, matrix) if reverse else _affine.matmul(matrix, inner)
    return out[..., :n, :]


class TransformOp(SampleOperator):
    """Shared machinery: ``ndim`` from the arguments (or the input), the input check, composition, layouts.

    Subclasses define ``DIMS`` (the supported dimensionalities), :meth:`ndim_of` and :meth:`matrix`.
    """

    INPUTS = (_TRANSFORM_INPUT,)
    DIMS: ClassVar[tuple[int, ...]] = (1, 2, 3, 4, 5, 6)
    NDIM_FROM: ClassVar[str] = ""  # the argument(s) the number of dimensions comes from, for errors

    def validate(self) -> None:
        super().validate()
        self._constant = not self.arg_inputs

    def ndim_of(self, args: Mapping[str, Any], input_ndim: int | None) -> int:
        """The transform's dimensionality from this sample's arguments (``input_ndim``: the input's, if any)."""
        raise NotImplementedError

    def matrix(self, args: Mapping[str, Any], ndim: int) -> np.ndarray:
        """This sample's ``(ndim+1, ndim+1)`` homogeneous float32 matrix."""
        raise NotImplementedError

    def output_layout(self, index: int, layouts: tuple[str, ...], ndim: int) -> str:
        return "F**" if ndim == 3 else "**"

    def prepare(
        self, ctx: RunContext, inputs: list[Batch], arg_inputs: dict[str, Batch], layouts: tuple[str, ...]
    ) -> None:
        where = f"fn.{self.type}()"
        if inputs:
            shapes = {tuple(s.shape) for s in inputs[0]}
            if len(shapes) > 1:
                raise ValueError(
                    f"{where}: every input transform of a batch must have the same shape; got {sorted(shapes)}"
                )
            shape = next(iter(shapes), (1, 2))
            if len(shape) == 3 and not layouts[0].startswith("F"):
                raise ValueError(
                    f"{where}: a 3-D input is a sequence of transforms and needs a layout starting with 'F'"
                )
            if shape[-1] != shape[-2] + 1:
                raise ValueError(
                    f"{where}: the input must hold (ndim, ndim+1) affine transforms; got samples of shape {shape}"
                )
        for name, batch in arg_inputs.items():
            shapes = {tuple(np.shape(s)) for s in batch}
            if len(shapes) > 1:
                raise ValueError(
                    f"{where}: argument {name!r}: every sample must have the same shape; got {sorted(shapes)}"
                )

    def _matrix_for(self, args: Mapping[str, Any], transform: np.ndarray | None) -> tuple[np.ndarray, int]:
        input_ndim = None if transform is None else transform.shape[-2]
        ndim = self.ndim_of(args, input_ndim)
        if ndim not in self.DIMS:
            raise ValueError(
                f"fn.{self.type}(): {self.NDIM_FROM} give(s) {ndim} dimensions; supported: {list(self.DIMS)}"
            )
        if input_ndim is not None and input_ndim != ndim:
            raise ValueError(
                f"fn.{self.type}(): {self.NDIM_FROM} give(s) a {ndim}D transform but the input describes a "
                f"{input_ndim}D transform"
            )
        return self.matrix(args, ndim), ndim

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        transform = inputs[0] if inputs else None
        try:
            matrix, ndim = self._matrix_for(args, transform)
        except ValueError as exc:  # a per-sample argument's values: name the sample after the argument
            raise ValueError(f"{exc} (sample {s.index})") from None
        if transform is None:
            return matrix[:ndim].copy()
        return compose(matrix, transform, self.args["reverse_order"])

    def dense(
        self, ctx: RunContext, inputs: list[np.ndarray], args: dict[str, Any], layouts: tuple[str, ...]
    ) -> tuple[np.ndarray, ...] | None:
        if not self._constant:
            return None
        transforms = inputs[0] if inputs else None
        matrix, ndim = self._matrix_for(self.args, None if transforms is None else transforms[0])
        if transforms is None:
            return (np.broadcast_to(matrix[:ndim], (ctx.batch_size, ndim, ndim + 1)).copy(),)
        return (compose(matrix, transforms, self.args["reverse_order"]),)


def _vector(value: Sequence[float], ndim: int, name: str, op: str) -> np.ndarray:
    """``value`` as a float32 vector of ``ndim`` values (one value is repeated)."""
    if len(value) == 1:
        return np.full(ndim, value[0], dtype=F32)
    if len(value) != ndim:
        raise ValueError(f"fn.{op}(): {name} has {len(value)} values; the transform has {ndim} dimensions")
    return np.asarray(value, dtype=F32)


def _identity(ndim: int) -> np.ndarray:
    return np.eye(ndim + 1, dtype=F32)


@register
class Translation(TransformOp):
    """A translation by ``offset`` (its length is the number of dimensions), DALI's ``fn.transforms.translation``."""

    type = "transforms.translation"
    NDIM_FROM = "offset"
    ARGS = (Arg("offset", _VEC, sch.REQUIRED, "The translation vector", tensor=True), _REVERSE)
    EXAMPLE = Example(
        inputs=(Tensor("float32", (2, 3), low=-2, high=2),),
        arg_inputs={"offset": Tensor("float32", (2,), low=-5, high=5)},
        args={"reverse_order": True},
    )

    def ndim_of(self, args: Mapping[str, Any], input_ndim: int | None) -> int:
        return len(args["offset"])

    def matrix(self, args: Mapping[str, Any], ndim: int) -> np.ndarray:
        m = _identity(ndim)
        m[:ndim, ndim] = args["offset"]
        return m


@register
class Scale(TransformOp):
    """A scaling by ``scale`` (per dimension), optionally around ``center``, DALI's ``fn.transforms.scale``."""

    type = "transforms.scale"
    NDIM_FROM = "scale"
    ARGS = (
        Arg("scale", _VEC, sch.REQUIRED, "The scale factor, per dimension", tensor=True),
        Arg("center", _VEC, None, "The center of the scaling (one value: the same for every dimension)", tensor=True),
        Arg("ndim", sch.Int(1), None, "Number of dimensions, when scale is one value and there is no input"),
        _REVERSE,
    )
    EXAMPLE = Example(
        arg_inputs={"scale": Tensor("float32", (2,), low=0.5, high=2)},
        args={"center": [1.0, -2.0]},
    )

    def validate(self) -> None:
        super().validate()
        scale, ndim = self.args["scale"], self.args["ndim"]
        if ndim is not None and not isinstance(scale, DataNode) and len(scale) not in (1, ndim):
            raise ValueError(f"fn.transforms.scale(): scale has {len(scale)} values but ndim={ndim}")

    def ndim_of(self, args: Mapping[str, Any], input_ndim: int | None) -> int:
        size = len(args["scale"])
        if size == 1:
            return args["ndim"] or input_ndim or 1
        if args["ndim"] is not None and args["ndim"] != size:
            raise ValueError(f"fn.transforms.scale(): scale has {size} values but ndim={args['ndim']}")
        return size

    def matrix(self, args: Mapping[str, Any], ndim: int) -> np.ndarray:
        scale = _vector(args["scale"], ndim, "scale", self.type)
        m = _identity(ndim)
        m[np.arange(ndim), np.arange(ndim)] = scale
        if args["center"] is not None:
            center = _vector(args["center"], ndim, "center", self.type)
            m[:ndim, ndim] = center * (F32(1) - scale)
        return m


@register
class Rotation(TransformOp):
    """A rotation by ``angle`` degrees (2-D; 3-D about ``axis``), optionally around ``center``
    (DALI's ``fn.transforms.rotation``)."""

    type = "transforms.rotation"
    DIMS = (2, 3)
    NDIM_FROM = "axis"
    ARGS = (
        Arg("angle", sch.Float(), sch.REQUIRED, "Angle, in degrees", tensor=True),
        Arg("axis", sch.Seq(sch.Float(), length=3), None, "Axis of a 3-D rotation (any non-zero length)", tensor=True),
        Arg("center", _VEC, None, "The center of the rotation", tensor=True),
        _REVERSE,
    )
    EXAMPLE = Example(
        inputs=(Tensor("float32", (3, 4), low=-1, high=1),),
        arg_inputs={"angle": Tensor("float32", (), low=-180, high=180)},
        args={"axis": [1.0, 2.0, -0.5], "center": [0.5, 1.0, -1.0]},
    )

    def ndim_of(self, args: Mapping[str, Any], input_ndim: int | None) -> int:
        return 3 if args["axis"] is not None else 2

    def matrix(self, args: Mapping[str, Any], ndim: int) -> np.ndarray:
        angle = F32(args["angle"]) * F32(math.pi / 180)
        c, s = F32(_libm.cosf(angle)), F32(_libm.sinf(angle))
        m = _identity(ndim)
        if ndim == 2:
            m[:2, :2] = [[c, -s], [s, c]]
        elif angle != 0:
            axis = np.asarray(args["axis"], dtype=F32)
            with np.errstate(divide="ignore", invalid="ignore"):  # a zero axis gives NaN, as in DALI
                axis = axis / np.sqrt(axis[0] * axis[0] + axis[1] * axis[1] + axis[2] * axis[2])
            u, v, w = axis
            one_c = F32(1) - c
            m[:3, :3] = [
                [u * u + (v * v + w * w) * c, u * v * one_c - w * s, u * w * one_c + v * s],
                [u * v * one_c + w * s, v * v + (u * u + w * w) * c, v * w * one_c - u * s],
                [u * w * one_c - v * s, v * w * one_c + u * s, w * w + (u * u + v * v) * c],
            ]
        if args["center"] is not None:
            center = _vector(args["center"], ndim, "center", self.type)
            m[:ndim, ndim] = _affine.centered(m[:ndim, :ndim], center)
        return m


@register
class Shear(TransformOp):
    """A shear by factors (``shear``) or angles in degrees (``angles``): 2 values in 2-D, 6 in 3-D
    (xy, xz, yx, yz, zx, zy), optionally around ``center`` (DALI's ``fn.transforms.shear``)."""

    type = "transforms.shear"
    DIMS = (2, 3)
    NDIM_FROM = "shear/angles"
    ARGS = (
        Arg("shear", _Flat(sch.Float(), min_length=1, broadcast=True), None, "The shear factors", tensor=True),
        Arg(
            "angles",
            _Flat(sch.Float(-90.0, 90.0), min_length=1, broadcast=True),
            None,
            "The shear angles, in degrees, in [-90, 90]",
            tensor=True,
        ),
        Arg("center", _VEC, None, "The center of the shear", tensor=True),
        _REVERSE,
    )
    EXAMPLE = Example(
        inputs=(Tensor("float32", (2, 3), low=-1, high=1),),
        arg_inputs={"angles": Tensor("float32", (2,), low=-60, high=60)},
        args={"center": [0.25, -1.5]},
    )

    def validate(self) -> None:
        super().validate()
        if (self.args["shear"] is None) == (self.args["angles"] is None):
            raise TypeError("fn.transforms.shear(): give exactly one of shear= (factors) or angles= (degrees)")

    def prepare(
        self, ctx: RunContext, inputs: list[Batch], arg_inputs: dict[str, Batch], layouts: tuple[str, ...]
    ) -> None:
        super().prepare(ctx, inputs, arg_inputs, layouts)
        for name in ("shear", "angles"):
            for i, value in enumerate(arg_inputs.get(name, ())):
                if np.shape(value) not in ((2,), (3, 2)):
                    raise ValueError(
                        f"fn.transforms.shear(): argument {name!r} (sample {i}) has shape {np.shape(value)}; per "
                        "sample it must be a 2-element vector (2-D) or a 3x2 matrix (3-D)"
                    )

    def ndim_of(self, args: Mapping[str, Any], input_ndim: int | None) -> int:
        name = "shear" if args["shear"] is not None else "angles"
        size = len(args[name])
        if size not in (2, 6):
            raise ValueError(
                f"fn.transforms.shear(): {name} has {size} values; it needs 2 (a 2-D shear) or 6 (a 3-D shear)"
            )
        return 2 if size == 2 else 3

    def matrix(self, args: Mapping[str, Any], ndim: int) -> np.ndarray:
        if args["shear"] is not None:
            factors = np.asarray(args["shear"], dtype=F32)
        else:
            factors = _libm.apply(_libm.tanf, np.asarray(args["angles"], dtype=F32) * F32(math.pi / 180))
        m = _identity(ndim)
        if ndim == 2:
            m[0, 1], m[1, 0] = factors
        else:
            m[0, 1], m[0, 2], m[1, 0], m[1, 2], m[2, 0], m[2, 1] = factors
        if args["center"] is not None:
            center = _vector(args["center"], ndim, "center", self.type)
            m[:ndim, ndim] = _affine.centered(m[:ndim, :ndim], center)
        return m


@register
class Crop(TransformOp):
    """The transform mapping the box ``[from_start, from_end]`` onto ``[to_start, to_end]`` per dimension
    (DALI's ``fn.transforms.crop``); one value is repeated for every dimension."""

    type = "transforms.crop"
    NDIM_FROM = "from_start/from_end/to_start/to_end"
    ARGS = (
        Arg("from_start", _VEC, (0.0,), "The lower bound of the original coordinate space", tensor=True),
        Arg("from_end", _VEC, (1.0,), "The upper bound of the original coordinate space", tensor=True),
        Arg("to_start", _VEC, (0.0,), "The lower bound of the destination coordinate space", tensor=True),
        Arg("to_end", _VEC, (1.0,), "The upper bound of the destination coordinate space", tensor=True),
        Arg("absolute", sch.Bool(), False, "Swap start and end where start > end"),
        _REVERSE,
    )
    NAMES = ("from_start", "from_end", "to_start", "to_end")
    EXAMPLE = Example(
        arg_inputs={"from_start": Tensor("float32", (2,), low=0, high=0.4)},
        args={"from_end": [0.9, 0.8], "to_start": 0.0, "to_end": [300.0, 200.0], "absolute": True},
    )

    def ndim_of(self, args: Mapping[str, Any], input_ndim: int | None) -> int:
        sizes = [len(args[name]) for name in self.NAMES]
        ndim = max(sizes)
        if any(size not in (1, ndim) for size in sizes):
            raise ValueError(
                f"fn.transforms.crop(): from_start, from_end, to_start and to_end have {sizes} values; each must "
                "have as many as the transform has dimensions, or one value (repeated)"
            )
        return ndim

    def matrix(self, args: Mapping[str, Any], ndim: int) -> np.ndarray:
        from_start, from_end, to_start, to_end = (_vector(args[n], ndim, n, self.type) for n in self.NAMES)
        if args["absolute"]:
            from_start, from_end = np.minimum(from_start, from_end), np.maximum(from_start, from_end)
            to_start, to_end = np.minimum(to_start, to_end), np.maximum(to_start, to_end)
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = (to_end - to_start) / (from_end - from_start)
        m = _identity(ndim)
        m[np.arange(ndim), np.arange(ndim)] = scale
        m[:ndim, ndim] = to_start - scale * from_start
        return m


@register
class Combine(SampleOperator):
    """Combine two or more transforms: applying the result equals applying the inputs in the order given
    (``reverse_order=True``: in reverse order), DALI's ``fn.transforms.combine``."""

    type = "transforms.combine"
    INPUTS = tuple(
        sch.Input(
            f"transform_{k}", "A transform (ndim, ndim+1) or a sequence of them", ("float32",), (2, 3), optional=k >= 2
        )
        for k in range(99)
    )
    ARGS = (_REVERSE,)
    EXAMPLE = Example(
        inputs=(Tensor("float32", (3, 4), low=-2, high=2), Tensor("float32", (3, 4), low=-1, high=1)),
        args={"reverse_order": True},
    )

    def output_layout(self, index: int, layouts: tuple[str, ...], ndim: int) -> str:
        return "F**" if ndim == 3 else "**"

    def prepare(
        self, ctx: RunContext, inputs: list[Batch], arg_inputs: dict[str, Batch], layouts: tuple[str, ...]
    ) -> None:
        shapes = [{tuple(s.shape) for s in batch} for batch in inputs]
        first = shapes[0]
        for k, shape in enumerate(shapes):
            if len(shape) > 1 or shape != first:
                raise ValueError(
                    f"fn.transforms.combine(): every input transform must have the same shape; input 0 has "
                    f"{sorted(first)}, input {k} has {sorted(shape)}"
                )
        shape = next(iter(first), (1, 2))
        if shape[-1] != shape[-2] + 1:
            raise ValueError(f"fn.transforms.combine(): the inputs must be (ndim, ndim+1) transforms; got {shape}")

    def _combine(self, transforms: Sequence[np.ndarray]) -> np.ndarray:
        n = transforms[0].shape[-2]
        out = _affine.homogeneous(transforms[0])
        reverse = self.args["reverse_order"]
        for t in transforms[1:]:
            m = _affine.homogeneous(t)
            out = _affine.matmul(out, m) if reverse else _affine.matmul(m, out)
        return out[..., :n, :]

    def sample(self, s: Sample, inputs: tuple[np.ndarray, ...], args: Mapping[str, Any]) -> np.ndarray:
        return self._combine(inputs)

    def dense(
        self, ctx: RunContext, inputs: list[np.ndarray], args: dict[str, Any], layouts: tuple[str, ...]
    ) -> tuple[np.ndarray, ...]:
        return (self._combine(inputs),)
