"""The command line and its HTTP client: the only place that turns outcomes into exit codes.

Owns: main.py (argparse, `run`, `check`), control.py and client.py (commands over the API),
tables.py, reload.py (`reload`, `check --diff`).
May import everything below it; imports the heavy parts (app, the server stack) only in the
commands that need them.
"""
