"""The ranks of one job: several trace files read side by side or as reports in worker
processes (:mod:`.many`), or on a Dask cluster (:mod:`.cluster`)."""
