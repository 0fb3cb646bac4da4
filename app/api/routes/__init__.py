"""One router per resource: runs (submit, read, list, trace) and agents."""
