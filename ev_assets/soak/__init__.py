"""A month of operation on an accelerated clock, driven by the platform's own schedules and sensor (`make soak`).

The soak walks a simulated clock in 10-minute ticks. At each tick it evaluates every schedule of the code location
(polls every 10 minutes, the daily ingest and warehouse, the daily monitoring, the weekly training) and the
retraining sensor, as the Dagster daemon would at that time, and runs what they request in the Dagster instance
(so `make ui` shows every run, with its schedule or sensor tag). The simulated feed changes on a given day: demand
grows and new stations open, so drift shows and the sensor retrains. A service (`python -m ev_assets.api`) answers
requests throughout. After each day it audits what a user relies on (`audit.py`) and prints one line; `--results-json`
writes every figure.

    python -m ev_assets.soak --days 30            # `make soak`; a fresh data root (refuses a foreign one)
"""
