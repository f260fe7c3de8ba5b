"""Children's output and the supervisor's own log: rotating sinks, the pumps that feed them, tail and follow.

Owns: sink.py (rotation between lines), files.py (paths, rename/copy-truncate), pump.py, tail.py,
follow.py (live followers for the API), setup.py (structlog for orchestrator.log and the console).
May import: config, platform, errors, types.
"""
