"""The command line: ``main`` parses and runs a command (:mod:`.main`); the summary's text
is :mod:`.render`; the commands over several files (ranks, ``diff``) are :mod:`.many`."""

from .main import demo_path, main

__all__ = ["demo_path", "main"]
