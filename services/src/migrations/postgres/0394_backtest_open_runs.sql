-- backtesting-engine: the open runs (queued or running), a few per user with work in the queue,
-- whatever the number of finished runs. The stranded-run repair (settle.ts) reads them once an
-- interval per replica: runs left open with every job final, and runs left `queued` whose jobs
-- have started. Before this index each pass read all of bt_runs, history included.
CREATE INDEX IF NOT EXISTS bt_runs_open ON bt_runs (status) WHERE status IN ('queued', 'running');
