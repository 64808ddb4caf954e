"""Run limits: how many runs of a workflow may be unfinished at once, per key, and what
happens to one over the limit (queued, refused or making room)."""
