"""Case specs: suite files validated by one shared validator (:mod:`.validate`, with typed checks in
:mod:`.checker`) against settings declared once as frozen dataclasses (:mod:`.settings`), and expanded
(:mod:`.suite`) into typed cases that know how to precheck, run and report themselves (:mod:`.case`, :mod:`.cost`,
:mod:`.training`). The measurement a cost case runs lives in :mod:`attnbench.measure.cost`."""
