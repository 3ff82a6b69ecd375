"""Data: the built-in portrait model and what ships with it (found through ganinterface.bundled)."""
