"""Data: icons and desktop files (found through ganinterface.bundled)."""
