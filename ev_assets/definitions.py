"""The ev-assets code location: the Definitions of every domain of `ev_assets.defs`, merged (no I/O here).

A domain is a module or package of `ev_assets.defs` with a `defs = dg.Definitions(...)`: adding a domain is
adding a folder (or module) that has one.
"""

import importlib
import pkgutil

import dagster as dg

import ev_assets.defs as domains


def domain_definitions() -> dict[str, dg.Definitions]:
    """Domain name -> its Definitions, for every domain of `ev_assets.defs`."""
    found = {}
    for module in sorted(pkgutil.iter_modules(domains.__path__), key=lambda m: m.name):
        loaded = importlib.import_module(f"{domains.__name__}.{module.name}")
        if isinstance(getattr(loaded, "defs", None), dg.Definitions):
            found[module.name] = loaded.defs
    return found


defs = dg.Definitions.merge(*domain_definitions().values())
