"""Case specs: suite files validated by one shared validator (:mod:`.validate`) and expanded (:mod:`.suite`) into
typed cases that know how to precheck, run and report themselves (:mod:`.case`, :mod:`.cost`, :mod:`.training`)."""
