"""A dbt-duckdb plugin (`plugins:` in dbt_project/profiles.yml): the lake's filesystem registered on dbt's own
DuckDB connection, so the raw views over an `s3://` lake (or any fsspec URL) read in dbt as they do in Python
(`warehouse.connect`). DuckDB's httpfs extension does not install offline; fsspec's s3fs is already here. A local
lake needs nothing, and then nothing beyond this module is imported: dbt starts as fast as before."""

from __future__ import annotations

from typing import Any

from dbt.adapters.duckdb.plugins import BasePlugin


class Plugin(BasePlugin):
    def initialize(self, plugin_config: dict[str, Any]) -> None:
        self.lake_url = plugin_config.get("lake_url") or ""
        self.s3_endpoint_url = plugin_config.get("s3_endpoint_url") or None

    def configure_connection(self, conn) -> None:
        if "://" not in self.lake_url or self.lake_url.startswith("file://"):
            return
        from ev_assets.lib import lake

        conn.register_filesystem(lake.Lake(self.lake_url, **lake.storage_options(self.lake_url, self.s3_endpoint_url)).fs)
