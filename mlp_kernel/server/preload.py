"""What the validation workers' fork server imports once, before it forks any worker (``worker.py``).

Imported only there (``set_forkserver_preload``): each worker then starts as a fork of a process that has
jinja2, yaml, the placement code and the Kubernetes renderer loaded, instead of a fresh interpreter importing
them again. Like every process mlp-kernel starts itself, it first skips the slow optional imports
(``startup.py``).
"""

from __future__ import annotations

from ..startup import skip_slow_optional_imports

skip_slow_optional_imports()

from . import preview, validation  # noqa: E402, F401  (the imports are the point)
