"""Process-wide choices that mlp-kernel's own processes make when they start, and only they.

Called first thing by the processes mlp-kernel starts itself: the gateway (one per open GPU (auto) notebook),
the ``mlp-kernel`` commands and the server's validation workers. Never on import: a library must not change
the interpreter of a process that merely imports it (the Jupyter server imports the provisioner and the
server extension; there it would change nothing anyway, ``jsonschema`` being imported long before).

Why: ``import kubernetes`` (its dynamic client imports ``kubernetes_validate``), ``kubernetes_validate`` and
anything else that imports ``jsonschema`` pay ~0.9 s of CPU for ``rfc3987_syntax``, which builds ~35 Earley
parsers at import time for jsonschema's ``iri`` and ``iri-reference`` format checkers (upstream:
python-jsonschema/jsonschema#1428). No schema these processes check uses those formats (the Kubernetes
OpenAPI schemas, the policy's, Jupyter's event schemas), and jsonschema treats the package as optional: with
it blocked, those two formats are simply not checked. Measured on the development machine: ``import
kubernetes`` 1.19 -> ~0.3 s of CPU, which a gateway on the Kubernetes backend pays on its first cell's path
(the backend's imports are lazy), and the test suite spends ~2 minutes of CPU less (docs/benchmarks.md,
"Test suite wall time").
"""

from __future__ import annotations

import sys

#: optional imports of third-party packages that cost far more than they give these processes
BLOCKED_OPTIONAL_IMPORTS = ("rfc3987_syntax",)


def skip_slow_optional_imports() -> None:
    """Block the optional imports above, unless this process imported them already (then keep them).

    ``sys.modules[name] = None`` is the import system's documented way to make ``import name`` raise
    ``ImportError``, which is what jsonschema expects of a format checker's missing library."""
    for name in BLOCKED_OPTIONAL_IMPORTS:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]
