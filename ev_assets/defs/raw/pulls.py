"""The body every file-based pull asset shares (session sources, vehicle telemetry): store the files as raw pulls,
say what was unusable, and report the `all_replay_files_read` check."""

from pathlib import Path
from typing import Callable, Iterable

import dagster as dg

from ev_assets.lib import rawstore, replayfiles
from ev_assets.lib.settings import Settings


def store_pulled_files(
    context: dg.AssetExecutionContext,
    settings: Settings,
    label: str,
    raw_source: str,
    files: Iterable[tuple[str, bytes]],
    stored_name: Callable[[str], tuple[str, str]],
    report: replayfiles.FileReport,
    folder: Path | None,
    mode: str,
):
    """Yields the pull's Output (the stored paths) and its check. `files` are (name, bytes) as pulled, `report`
    what the pull could not use, `folder` where it read them (None in simulated mode)."""
    stored, store = [], rawstore.from_settings(settings)
    for name, data in files:
        prefix, suffix = stored_name(name)
        stored.append(store.write_pull(raw_source, data, prefix=prefix, suffix=suffix))
    readable = len(stored) - len(report.unreadable)
    context.log.info(f"{len(stored)} {label} file(s), {sum(r.written for r in stored)} new, {readable} readable")
    for line in report.warnings(label):
        context.log.warning(line)
    if not readable and folder is not None:
        context.log.warning(f"{label}: no readable {label} file in {folder}: raw.{label} will be empty")
    yield dg.Output(
        [str(r.path) for r in stored],
        metadata={
            "files": len(stored),
            "new_files": sum(r.written for r in stored),
            "bytes": sum(r.size_bytes for r in stored),
            "paths": dg.MetadataValue.json([str(r.path) for r in stored]),
            "source_mode": mode,
            **report.metadata(),
        },
    )
    yield dg.AssetCheckResult(check_name=replayfiles.CHECK, passed=report.ok, metadata=report.check_metadata())
