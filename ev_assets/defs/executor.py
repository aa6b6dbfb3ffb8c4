"""Where a run's steps execute: EV_EXECUTOR (read when the run starts, not when the code loads).

- `default`: Dagster's own executor: every step in its own process, or all in one with `in_process` in the run's
  config (what `make demo` and the CLI use).
- `celery`: each step is a task on the Celery workers listening to EV_CELERY_BROKER_URL (dagster-celery). The
  workers import this code location and read the same EV_* settings; the Dagster instance they write to must be
  one they all reach (PostgreSQL, see README "Beyond one machine"), and so must the lake and the raw store.
"""

import dagster as dg
from dagster._core.execution.retries import RetryMode

from ev_assets.lib.settings import Settings


@dg.executor(
    name="ev_executor",
    config_schema=dg.multi_or_in_process_executor.config_schema,
    requirements=dg.multi_or_in_process_executor.get_requirements,  # the same checks as the default executor
)
def ev_executor(init_context):
    settings = Settings.from_env()
    if settings.executor == "celery":
        from dagster_celery.executor import CeleryExecutor

        return CeleryExecutor(retries=RetryMode.DISABLED, broker=settings.celery_broker_url,
                              backend=settings.celery_broker_url)
    return dg.multi_or_in_process_executor.executor_creation_fn(init_context)


defs = dg.Definitions(executor=ev_executor)
