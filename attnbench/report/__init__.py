"""Report: reads results only (never runs anything) — frames (:mod:`.frame`), fits (:mod:`.fits`), cost and
accuracy figures and tables (:mod:`.cost`, :mod:`.accuracy`), console tables (:mod:`.console`), and
:func:`attnbench.report.build.plot_results` that writes them all. Nothing in the package imports it but the CLI."""
