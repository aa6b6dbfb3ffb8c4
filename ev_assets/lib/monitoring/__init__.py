"""Monitoring of the served models, without Dagster: feature drift against a model's training reference
(`drift`, Evidently reports) and live error of logged predictions once their outcome is known (`live`)."""
