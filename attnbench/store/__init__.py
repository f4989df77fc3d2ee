"""Storage: the one row schema (:mod:`.schema`) and the crash-safe, locked results CSV (:mod:`.csvfile`)."""
