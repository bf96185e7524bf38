"""Reading traces: streaming loader and the in-memory index. Imports neither textual nor rich."""

from .builder import GPU_ANNOTATION_CATS, GPU_CATS, RUNTIME_CATS
from .index import compute_depth
from .loader import Loader, Progress, load
from .model import LANE_CPU, LANE_GPU, LANE_GPU_ANNOTATION, CounterTrack, Lane, Trace
from .source import TraceError

__all__ = [
    "GPU_ANNOTATION_CATS", "GPU_CATS", "RUNTIME_CATS", "LANE_CPU", "LANE_GPU",
    "LANE_GPU_ANNOTATION", "CounterTrack", "Lane", "Loader", "Progress", "Trace", "TraceError",
    "compute_depth", "load",
]
