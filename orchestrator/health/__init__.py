"""Health probes (HTTP, one loop per running child) and the machine checks (disk, memory).

Owns: verdict.py (pure: grace, consecutive failures), probe.py (the loops, one shared HTTP client;
nocookies.py its cookie policy, imported with httpx),
checks.py (disk free and memory used, as events and readings).
May import: core, logs, config, platform, errors, types. Reports verdicts to a runner through its
inbox; app.py attaches the probes to runners.
"""
