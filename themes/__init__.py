"""Colour themes for the terminal UI, one TOML file each (shipped as ``tracetui.themes``)."""
