"""Modal screens: help, rule documentation, export path prompt."""
