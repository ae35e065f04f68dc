"""Audio operators (DALI's ``decoders.audio``, ``audio_resample``, ``spectrogram``, ``mel_filter_bank``, ``mfcc``,
``to_decibels``, ``power_spectrum``, ``preemphasis_filter``, ``nonsilent_region``). The numerics live in the
private ``_resampling`` and ``_kernels`` modules: pure functions on numpy arrays reproducing DALI's CPU kernels."""
