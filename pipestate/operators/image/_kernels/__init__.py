"""Pure image kernels with DALI's CPU semantics, one concern per module.

- ``decode``: bytes -> HWC ``uint8`` (JPEG, PNG, BMP, TIFF, WebP), DALI's colour spaces, shape peeking.
- ``resize_params``: DALI's output-size rules of ``fn.resize`` (modes, ``max_size``, ROI, ``subpixel_scale``).
- ``resample``: DALI's separable resampling filters (NN, linear, triangular, cubic, lanczos3, gaussian).
- ``warp``: ``warp_affine`` / ``rotate`` (DALI's matrix convention, borders, output size).
- ``crop``: crop-window arithmetic (``crop_pos_x/y``) and ``crop_mirror_normalize``'s arithmetic.
- ``color``: DALI's colour-space conversions, the colour twist (``hsv``, ``hue``, ``saturation``,
  ``color_twist``) and ``brightness_contrast``, bit-exact.
- ``convolution``: DALI's Gaussian and Laplacian windows, separable correlation, ``filter`` (OpenCV).

Every function takes and returns numpy arrays (or plain numbers), holds no state and releases the GIL in its
heavy work (numpy, SciPy and OpenCV do), so the operator kit can run samples on threads.
"""
