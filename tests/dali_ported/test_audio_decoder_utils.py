# Port of DALI's dali/test/python/test_audio_decoder_utils.py (NVIDIA/DALI commit
# 24be184b25ad4ee2497f6a2c22ab66f071ea61d3; Apache-2.0, Copyright (c) NVIDIA CORPORATION & AFFILIATES):
# the helper DALI's audio tests import, unchanged.
import math

import numpy as np


def generate_waveforms(length, frequencies):
    """
    generate sinewaves with given frequencies,
    add Hann envelope and store in channel-last layout
    """
    n = int(math.ceil(length))
    X = np.arange(n, dtype=np.float32)  # noqa: N806 - DALI's name

    def window(x):
        x = 2 * x / length - 1
        np.clip(x, -1, 1, out=x)
        return 0.5 * (1 + np.cos(x * math.pi))

    wave = np.sin(X[:, np.newaxis] * (np.array(frequencies) * (2 * math.pi)))
    return wave * window(X)[:, np.newaxis]
