"""Installing the supervisor as an OS service: NSSM on Windows (nssm.py builds the commands, pure).

May import: core (the stop timings the service manager must wait for), config, platform, errors.
"""
