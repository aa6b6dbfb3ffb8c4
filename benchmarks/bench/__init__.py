"""What the benchmark scripts in benchmarks/ share: the data folder (`datadir`), the machine line (`machine`),
measuring a process tree's wall time and peak memory (`measure`), and the figures' formatting (`report`). The
warehouse benchmark's own parts: `warehouse_load` (raw tables from the simulator), `warehouse_dbt` (the dbt
invocations as Dagster makes them), `warehouse_pandas` (the session logic in plain pandas) and
`warehouse_report`."""
