"""Reloading supervisor.yaml while running: plan what changed, apply only that, report it.

Owns: plan.py (pure diff of two configs), apply.py (carrying a plan out on the Supervisor),
reloader.py (triggers, lock, the file watcher), routes.py (POST /api/reload, GET /api/reload/plan).
May import: api (its error helpers), health, core, logs, config, platform, errors, types.
"""
