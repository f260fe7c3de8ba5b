"""The HTTP control API: a thin Starlette layer over the Supervisor, its access rules and its metrics.

Owns: app.py (create_app and the routes), protocols.py (what the API needs from the supervisor),
auth.py (token, Host and Origin rules), token.py, server.py (uvicorn embedded), listener.py (swaps on
a reload), errors.py, metrics.py and httpmetrics.py (Prometheus).
May import: core, logs, config, platform, errors, types. Not health (independent siblings).
"""
