"""Reading traces: streaming loader and the in-memory index. Imports neither textual nor rich."""

from .loader import GPU_ANNOTATION_CATS, GPU_CATS, RUNTIME_CATS, Loader, Progress, load
from .source import TraceError
from .timeline import (LANE_CPU, LANE_GPU, LANE_GPU_ANNOTATION, CounterTrack, Lane, Trace,
                       compute_depth)

__all__ = [
    "GPU_ANNOTATION_CATS", "GPU_CATS", "RUNTIME_CATS", "LANE_CPU", "LANE_GPU",
    "LANE_GPU_ANNOTATION", "CounterTrack", "Lane", "Loader", "Progress", "Trace", "TraceError",
    "compute_depth", "load",
]
