"""How the warehouse runs dbt: the arguments and environment of each invocation, built without Dagster or dbt.

The dbt project runs in two ways (as dagster-open-platform splits its own):

- **per UTC day**, the incremental models (`INCREMENTAL`: the status facts, the status runs, the inferred sessions,
  the hourly utilization mart). A day's run processes the window [day, day + 1) plus the state it carries over.
- **unpartitioned**, everything else: the staging and interval views, the dimensions, the marts rebuilt whole
  from the incremental tables, and dbt's tests on the raw tables.

The window reaches dbt as environment variables (`window_env`), which the macro `window_date` reads only while
compiling SQL. Everything dbt sees while parsing (the `--vars` of `dbt_vars`, the profile) stays the same from one
day to the next, so dbt re-uses its parsed project (`partial_parse.msgpack`, kept per data root by `reuse_parse` /
`keep_parse`) instead of parsing all of it again for each partition.
"""

import json
import os
import shutil
from datetime import date
from pathlib import Path

INCREMENTAL = "config.materialized:incremental"
WINDOW_ENV = ("EV_DBT_MIN_DATE", "EV_DBT_MAX_DATE")
# A test runs with the invocation that builds the last of its models (dbt's "buildable"): a relationship test
# from a fact to a dimension runs with the fact, never before it exists (dbt's default, "eager", would run it
# with the dimension, in the invocation before).
INDIRECT_SELECTION = {"DBT_INDIRECT_SELECTION": "buildable"}
PARTIAL_PARSE = "partial_parse.msgpack"


def dbt_vars(data_dir: Path, poll_interval_minutes: int) -> dict:
    """`--vars`: the data root (so dbt writes where the Python assets do) and the poll interval. No window: a
    change of --vars makes dbt parse the whole project again."""
    return {"ev_data_dir": str(data_dir), "poll_interval_minutes": poll_interval_minutes}


def build_args(
    data_dir: Path,
    poll_interval_minutes: int,
    *,
    command: str = "build",
    select: str | None = None,
    exclude: str | None = None,
    full_refresh: bool = False,
    unit_tests: bool = False,
    extra_vars: dict | None = None,
) -> list[str]:
    """The arguments after `dbt` (`command` may be two words: "docs generate"). Dagster adds its own `--select`
    for the assets of a run; the benchmark, which runs dbt directly, selects here."""
    args = [*command.split(), "--vars", json.dumps({**dbt_vars(data_dir, poll_interval_minutes), **(extra_vars or {})})]
    if select:
        args += ["--select", select]
    if exclude:
        args += ["--exclude", exclude]
    if full_refresh:
        args.append("--full-refresh")
    if command == "build" and not unit_tests:
        # The given/expect cases beside the models check the SQL, not the data: `make test` and a plain `dbt build`
        # run them; a day's run would spend ~0.5 s on each of them, every day.
        args += ["--exclude-resource-type", "unit_test"]
    return args


def window_env(start: date | None = None, end: date | None = None) -> dict[str, str]:
    """The window [start, end) of UTC days as dbt's environment; empty values (the whole history) without one."""
    if (start is None) != (end is None):
        raise ValueError(f"a window needs both ends, got {start} .. {end}")
    if start is not None and start >= end:
        raise ValueError(f"an empty window: {start} .. {end} (the end is exclusive)")
    return dict(zip(WINDOW_ENV, ("", "") if start is None else (f"{start:%Y-%m-%d}", f"{end:%Y-%m-%d}")))


def run_env(start: date | None = None, end: date | None = None) -> dict[str, str]:
    """The environment of a warehouse dbt invocation: the window and the test selection."""
    return {**window_env(start, end), **INDIRECT_SELECTION}


def reuse_parse(cache: Path, target_path: Path) -> bool:
    """Put the cached parse into the target folder of an invocation about to run; False when there is none yet.
    dbt checks it (files, vars, profile) and parses only what changed, or everything when the vars changed."""
    if not cache.is_file():
        return False
    target_path.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(cache, target_path / PARTIAL_PARSE)
    return True


def keep_parse(target_path: Path, cache: Path) -> bool:
    """Keep the parse an invocation wrote for the next one (replaced in one step: a run reading it meanwhile
    sees the old file or the new one, never half of one)."""
    written = target_path / PARTIAL_PARSE
    if not written.is_file():
        return False
    cache.parent.mkdir(parents=True, exist_ok=True)
    partial = cache.with_name(f".{cache.name}.{os.getpid()}")
    shutil.copyfile(written, partial)
    os.replace(partial, cache)
    return True
