"""The terminal UI (Textual). Nothing below tracetui.app imports it."""
