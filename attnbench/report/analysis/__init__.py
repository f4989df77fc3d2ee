"""Analysis of result rows: loading and labelling (:mod:`.frame`), scaling fits (:mod:`.fits`), the scaling, accuracy
and comparison tables (:mod:`.scaling`, :mod:`.accuracy`, :mod:`.compare`), learning-rate sweeps (:mod:`.sweep`),
the paper's claims (:mod:`.claims`) and the report's summary (:mod:`.summary`). Pure functions of a DataFrame;
nothing here imports matplotlib or jinja2 or writes a file."""
