"""Training for the accuracy suites: tasks (:mod:`.tasks`), models (:mod:`.models`), metrics (:mod:`.metrics`)
and the loop (:mod:`.loop`). Built on the registry, the data loaders and the measurement layer; knows no suites."""
