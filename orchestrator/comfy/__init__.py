"""Everything ComfyUI: the model of the `comfy:` service, its queue and VRAM, drain, proxy, routes, metrics.

May import: api, health, core, logs, config, platform, errors, types. Not reload (independent
siblings): app.py hooks the drain into the reloader.
"""
