"""Renderers: they format the analysis layer's objects and nothing else — markdown (:mod:`.markdown`), the HTML
report (:mod:`.html`), console tables (:mod:`.console`), matplotlib figures (:mod:`.mpl`, :mod:`.cost_figures`,
:mod:`.accuracy_figures`), and the files ``attnbench plot`` writes (:mod:`.files`)."""
