"""Seeded, download-free int8 models for tests, benchmarks and the demo."""
from .mobilenet_v2 import make_divisible, mobilenet_v2_float
from .zoo import ZOO, get, mobilenet_v2, path, zoo_names

__all__ = ["mobilenet_v2", "mobilenet_v2_float", "make_divisible", "ZOO", "get", "path", "zoo_names"]
