"""The jupyter_server extension object: its configuration (traitlets) and what it wires into the server.

Configured like any jupyter_server component, e.g. in ``jupyter_server_config.py``::

    c.MlpKernelExtension.admin_users = ["alice"]
    c.MlpKernelExtension.admin_groups = ["gpu-admins"]
    c.MlpKernelExtension.user_groups = "my_site.identity:groups_of"   # user -> list of group names

With ``c.MlpKernelExtension.git_repo = "/srv/kernelspecs-repo"`` (the server's clone) a save is a Git
commit on ``git_branch`` instead of a file written here, pushed to ``git_remote`` when set, or pushed to a
review branch with ``git_review = True`` (``gitrepo.py``, docs/admin-guide.md "Admin changes through Git").

It registers the REST handlers under ``{base_url}mlp-kernel/api/`` and refreshes the Prometheus metrics from
the kernels' status files on a timer. Validation, renders and placement previews run in worker processes
with a time and memory limit (``worker.py``), never on the server's event loop.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from jupyter_core.paths import jupyter_data_dir
from tornado.ioloop import PeriodicCallback
from traitlets import Any as AnyTrait
from traitlets import Bool, Float, Int, List, Unicode
from traitlets.config import LoggingConfigurable

from .. import audit
from .admin import AdminRule, load_callable
from .audit_metrics import COLLECTOR as AUDIT_COUNTER
from .files import KernelspecFiles
from .fleet import FleetKernel, list_fleet
from .gitrepo import Author, GitError, GitRepo
from .history import HistoryStore
from .metrics import FleetMetrics
from .worker import WorkerPool


class MlpKernelExtension(LoggingConfigurable):
    """Server-side half of the GPU (auto) JupyterLab extension: admin API, fleet view, metrics."""

    admin_users = List(
        Unicode(),
        help="Usernames (identity provider's User.username) allowed to save "
        "kernelspec templates and the placement policy.",
    ).tag(config=True)
    admin_groups = List(
        Unicode(), help="Groups whose members may save; see user_groups for where groups come from."
    ).tag(config=True)
    user_groups = AnyTrait(
        None,
        allow_none=True,
        help="Callable user -> list of group names, or its import string "
        "'package.module:function'. Default: the identity's `groups` attribute, "
        "else, for the server's owner (JUPYTERHUB_USER) only, the "
        "MLP_KERNEL_USER_GROUPS environment variable (comma-separated).",
    ).tag(config=True)
    team_group_prefix = Unicode(
        "team-",
        help="An admin's team (the audit record of an admin change, counted by team on /metrics) is "
        "their one group named this prefix + the team, as the hub's spawn hook reads it; the server's "
        "owner has MLP_KERNEL_TEAM, as the kernels do. '' = teams from MLP_KERNEL_TEAM only.",
    ).tag(config=True)
    kernelspec_names = List(
        Unicode(),
        default_value=[],
        help="Extra kernelspecs managed by mlp-kernel (admin page, fleet). Every kernelspec whose "
        "kernel.json uses the gpu-auto-provisioner is managed without being listed here.",
    ).tag(config=True)
    history_dir = Unicode(
        "",
        help="Where previous versions of saved files are kept (0700/0600). "
        "Default: {jupyter_data_dir}/mlp-kernel/history.",
    ).tag(config=True)
    history_limit = Int(50, help="Versions kept per file.").tag(config=True)
    max_body_bytes = Int(
        1 << 20,
        help="Largest request body the API accepts (bytes); larger ones get 413 before anything is parsed.",
    ).tag(config=True)
    work_timeout = Float(
        10.0,
        help="Seconds a validate, render or placement preview may take before its "
        "worker process is killed and the request answered 400.",
    ).tag(config=True)
    work_memory_mb = Int(1024, help="Address-space limit of each worker process (MB; 0 = none).").tag(
        config=True
    )
    work_processes = Int(
        2,
        help="Worker processes for validate, render and preview (requests beyond wait "
        "for one; the server's event loop never does the work).",
    ).tag(config=True)
    metrics_interval = Float(
        15.0,
        help="Seconds between metric refreshes from the status files "
        "(0 disables the timer; fleet requests still refresh).",
    ).tag(config=True)

    git_repo = Unicode(
        "",
        help="The server's Git clone of the repository holding the kernelspec files: saves become commits "
        "there (author: the admin; message: their note) instead of files written on this disk. '' = no Git.",
    ).tag(config=True)
    git_branch = Unicode("main", help="The branch saves commit to (and the deployed revision).").tag(
        config=True
    )
    git_remote = Unicode(
        "", help="Remote of git_repo that saves are pushed to ('origin'); '' = commits stay in git_repo."
    ).tag(config=True)
    git_review = Bool(
        False,
        help="Push each save to a new branch mlp-kernel/<user>/<time> for a merge request instead of to "
        "git_branch; it is deployed when merged.",
    ).tag(config=True)
    git_path = Unicode(
        "kernels/{kernelspec}",
        help="Where a kernelspec's files are in the repository when the installed kernelspec is not inside "
        "git_repo's checkout (a ConfigMap that Argo CD builds from the repository).",
    ).tag(config=True)
    git_email_domain = Unicode(
        "users.noreply.localhost",
        help="Author e-mail of a commit: <username>@git_email_domain (a username with an @ is used as is).",
    ).tag(config=True)
    git_committer = Unicode(
        "mlp-kernel <mlp-kernel@localhost>", help="Committer of the commits ('Name <email>')."
    ).tag(config=True)
    git_timeout = Float(60.0, help="Seconds one git command may take (a fetch or push included).").tag(
        config=True
    )

    def setup(self, serverapp: Any, routes: list[Any]) -> None:
        """Called once by the extension loader (``mlp_kernel.server``) with the REST routes to serve; the
        routes come from there because the handlers import this class (one direction, no cycle)."""
        self.serverapp = serverapp
        self.files = KernelspecFiles(serverapp.kernel_spec_manager, self.kernelspec_names)
        default_root = Path(jupyter_data_dir()) / "mlp-kernel" / "history"
        root = Path(self.history_dir) if self.history_dir else default_root
        self.history = HistoryStore(root, self.history_limit)
        self.admin_rule = AdminRule(
            frozenset(self.admin_users),
            frozenset(self.admin_groups),
            load_callable(self.user_groups),
            self.team_group_prefix,
        )
        self.git, self.git_problem = self._open_git()
        self.git_lock = asyncio.Lock()  # one git operation at a time (they share the clone's refs)
        self.metrics = FleetMetrics()
        audit_file = audit.destination()  # counted on /metrics by event and team (audit_metrics.py)
        counted = audit_file not in (audit.STDOUT, audit.OFF)
        AUDIT_COUNTER.watch(Path(audit_file).expanduser() if counted else None)
        self.pool = WorkerPool(self.work_processes, self.work_timeout, self.work_memory_mb)
        web_app = serverapp.web_app
        web_app.settings["mlp_kernel"] = self
        web_app.add_handlers(".*$", routes)
        if self.metrics_interval > 0:
            self._timer = PeriodicCallback(self._refresh_on_timer, self.metrics_interval * 1000)
            self._timer.start()
        if not self.admin_users and not self.admin_groups:
            self.log.info(
                "mlp-kernel: no admins configured (MlpKernelExtension.admin_users/admin_groups): "
                "the admin page is read-only for everyone"
            )

    def _open_git(self) -> tuple[GitRepo | None, str]:
        """The configured repository, or why saves are refused (a broken Git setup must never fall back to
        writing files that the GitOps sync would overwrite)."""
        if not self.git_repo:
            return None, ""
        name, _, email = self.git_committer.partition("<")
        try:
            repo = GitRepo(
                Path(self.git_repo),
                self.git_branch,
                remote=self.git_remote,
                review=self.git_review,
                path_template=self.git_path,
                committer=Author(
                    name.strip() or "mlp-kernel", email.rstrip(">").strip() or "mlp-kernel@localhost"
                ),
                timeout=self.git_timeout,
            )
        except GitError as e:
            self.log.error("mlp-kernel: git_repo %s cannot be used, saves are refused: %s", self.git_repo, e)
            return None, f"the server's Git repository ({self.git_repo}) cannot be used: {e}"
        mode = "review branches" if self.git_review else f"branch {self.git_branch}"
        self.log.info("mlp-kernel: admin saves are Git commits in %s (%s)", self.git_repo, mode)
        return repo, ""

    def fleet(self) -> list[FleetKernel]:
        return list_fleet(
            self.serverapp.kernel_manager, self.serverapp.runtime_dir, self.files.kernelspec_names
        )

    def _refresh_on_timer(self) -> None:
        try:
            self.refresh_metrics()
        except Exception:  # a bad status file must not stop the timer
            self.log.exception("mlp-kernel: metrics refresh failed")

    def refresh_metrics(self) -> list[FleetKernel]:
        kernels = self.fleet()
        self.metrics.refresh(kernels)
        return kernels
