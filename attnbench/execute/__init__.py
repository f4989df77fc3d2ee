"""Execution: isolation of every case in a fresh process with a timeout (:mod:`.isolate`) and the resumable sweep
that appends their rows (:mod:`.runner`)."""
