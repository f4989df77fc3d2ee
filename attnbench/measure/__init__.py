"""Measurement: the timer (:mod:`.timing`), peak-memory counters (:mod:`.memory`) and provenance / machine identity
(:mod:`.provenance`). Used by the cost cases and by training alike; imports nothing from the rest of attnbench but
its version."""
