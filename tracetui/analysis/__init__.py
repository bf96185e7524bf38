"""Analyses over a loaded trace (numpy only; imports neither textual nor rich)."""
