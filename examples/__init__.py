"""Runnable examples; the tests import them so the documented code is the tested code."""
