"""`python -m ev_assets.live` (`make live`): the live path's processes. See `__main__` for the commands."""
