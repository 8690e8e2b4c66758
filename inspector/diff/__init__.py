"""``kinspect diff A B``: what changed between two model files, statically (and optionally
with both probed on the same inputs). ``run.diff_files`` assembles the DiffReport."""
