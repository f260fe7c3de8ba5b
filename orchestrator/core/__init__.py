"""The lifecycle: the pure state machine, the runner that drives one service, the Supervisor over all.

Owns: machine.py (no I/O, no clock), runner.py, supervisor.py, events, status, the state file of
our children, port conflicts, resource sampling.
May import: logs, config, platform, errors, types. Never health, reload, comfy or api: those plug in
through the hooks the Supervisor and ServiceRunner offer (add_runner_hook, companions, drainer,
system_report, ProbeView), wired by app.py.
"""
