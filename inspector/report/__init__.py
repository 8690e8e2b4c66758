"""The report: the single source of truth that every output format and the TUI render."""
