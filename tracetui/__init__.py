"""tracetui: a terminal explorer for PyTorch Profiler (Kineto) and Chrome JSON traces."""

__version__ = "0.1.0"
