"""Image operators (decoders, geometry, colour). The pixel work lives in ``_kernels``: pure functions on numpy
arrays that reproduce DALI's CPU arithmetic, so the operator modules only resolve arguments and layouts."""
