"""Widgets of the inspector; each renders one part of the Report."""
