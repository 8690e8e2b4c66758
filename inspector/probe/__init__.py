"""Dynamic probe: TensorFlow runs only in a child process (see child.py), never in kinspect."""
