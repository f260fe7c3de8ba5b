"""Loading and validating supervisor.yaml into frozen spec dataclasses (spec.py), with file/line/key errors.

Owns: the YAML reader that keeps line numbers (document.py), the typed readers (read.py), the
service and check sections, env_file parsing, units (sizes, durations), the YAML-free helpers
(text.py: ${VAR} expansion, paths) and the CLI's lenient read of state_dir and api (locate.py).
May import: platform (the command-line splitting rules of each OS), errors, types. Nothing else:
every other package reads the specs made here.
"""
