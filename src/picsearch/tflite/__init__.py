"""TensorFlow Lite searchers: a library as ``.tflite`` files the Task Library opens.

``export`` writes them (``export_tflite``), ``models`` reshapes the encoders' graphs for
the Task Library, ``index`` computes the ScaNN index's arrays, ``options`` holds its
settings, and ``env`` finds and runs the two converter venvs (``make tflite-env``).
``convert_job``, ``metadata_job`` and ``query_job`` are scripts those venvs run; they
import nothing from picsearch, and picsearch never imports them.
"""

from __future__ import annotations

from .env import ConversionFailed, ConverterEnv, ConverterEnvMissing, find_env
from .export import FILE_NAMES, TfliteReport, export_tflite
from .options import DISTANCES, ScannOptions
from .query import task_library_search

__all__ = [
    "ScannOptions",
    "DISTANCES",
    "TfliteReport",
    "export_tflite",
    "FILE_NAMES",
    "ConverterEnv",
    "ConverterEnvMissing",
    "ConversionFailed",
    "find_env",
    "task_library_search",
]
