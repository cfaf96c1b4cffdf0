"""REST handlers of ``/mlp-kernel/api/``: templates and policy, history, dry runs, fleet (docs/rest-api.md).

Every handler is a jupyter_server ``APIHandler``: authenticated and XSRF-protected like the rest of the
server, and authorized through the server's ``Authorizer`` on resource ``mlp_kernel``. Reading and dry runs
need ``read``; saving and rolling back need ``write`` **and** mlp-kernel admin membership (``admin``), checked
here on the server whatever the UI shows. Errors are JSON ``{"message": ..., "issues": [...]}`` where each
issue names the line and field. A body over ``max_body_bytes`` is refused with 413 before it is parsed, and
the parsing of what users send (validate, render, preview) runs in worker processes with a time limit.
With ``git_repo`` configured, reads, history, saves and rollbacks go to the Git branch instead of the disk
(``gitrepo.py``; one git operation at a time, in a thread). Every save or rollback is an audit record.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone
from typing import Any

from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from .. import audit
from .app import MlpKernelExtension
from .files import KERNEL_JSON, FileRefused, SpecFile, policy_file_name, read_text, sha256, write_atomic
from .gitrepo import GitError, author_of, clean_note
from .preview import PreviewError, place, policy_names, render_pod
from .validation import Issue, has_errors, validate
from .worker import WorkFailed, WorkTimeout

RESOURCE = "mlp_kernel"


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number (JSON has no NaN or infinity)")


class MlpKernelHandler(APIHandler):
    auth_resource = RESOURCE

    @property
    def ext(self) -> MlpKernelExtension:
        return self.settings["mlp_kernel"]

    # jupyter_server's APIHandler.prepare drops JupyterHandler's keyword the same way (and ignores the same
    # override error): tornado calls prepare() without arguments.
    async def prepare(self) -> None:  # type: ignore[override]
        await super().prepare()
        limit = self.ext.max_body_bytes
        if len(self.request.body or b"") > limit:
            raise web.HTTPError(
                413,
                f"Request body too large: {len(self.request.body)} bytes, the limit is "
                f"{limit} (MlpKernelExtension.max_body_bytes).",
            )

    async def work(self, what: str, func: Any, *args: Any) -> Any:
        """``func(*args)`` in a worker process; a limit exceeded becomes ``PreviewError`` saying which."""
        ext = self.ext
        try:
            return await ext.pool.run(func, *args)
        except WorkTimeout:
            self.log.warning(
                "mlp-kernel: %s by %s stopped after %g s", what, self.username(), ext.work_timeout
            )
            raise PreviewError(
                400,
                f"Stopped {what} after {ext.work_timeout:g} s (the limit, "
                "MlpKernelExtension.work_timeout): the text is too expensive to process "
                "(YAML aliases expanding, deep nesting or heavy template arithmetic?). "
                "Simplify it.",
            ) from None
        except WorkFailed as e:
            raise PreviewError(400, f"Could not finish {what}: {e}.") from None
        except (PreviewError, ImportError):
            raise
        except Exception as e:  # a bug of ours, not the input: still one clear line rather than a traceback
            self.log.exception("mlp-kernel: %s by %s failed", what, self.username())
            raise PreviewError(500, f"{what} failed: {type(e).__name__}: {e}") from None

    def body(self) -> dict[str, Any]:
        try:
            data = json.loads(self.request.body or b"{}", parse_constant=_no_constant)
        except ValueError as e:
            raise web.HTTPError(400, f"Request body is not valid JSON: {e}") from None
        except RecursionError:
            raise web.HTTPError(400, "Request body is nested too deeply.") from None
        if not isinstance(data, dict):
            raise web.HTTPError(400, "Request body must be a JSON object.")
        return data

    def fail(self, status: int, message: str, issues: list[Issue] | None = None) -> None:
        self.set_status(status)
        self.finish({"message": message, "issues": [i.to_json() for i in issues or []]})

    def resolve(self, kernelspec: str, name: str) -> SpecFile:
        try:
            return self.ext.files.resolve(kernelspec, name)
        except FileRefused as e:
            raise web.HTTPError(e.status, str(e)) from None

    def username(self) -> str:
        return getattr(self.current_user, "username", None) or "?"

    def display_name(self) -> str:
        """How people know the user (the identity's ``name``, as the Fleet shows it); jupyter_server's
        default identity has a hex ``username``, which means nothing to the other admins."""
        user = self.current_user
        return getattr(user, "name", None) or getattr(user, "display_name", None) or self.username()

    async def can_save(self) -> tuple[bool, str]:
        user = self.current_user
        allowed = await ensure_async(self.authorizer.is_authorized(self, user, "write", RESOURCE))
        if not allowed:
            return False, f"the server's authorizer does not allow 'write' on '{RESOURCE}' for this user"
        if not self.ext.admin_rule.is_admin(user):
            return False, self.ext.admin_rule.why_not(user)
        return True, ""

    async def require_admin(self, what: str) -> None:
        ok, why = await self.can_save()
        if not ok:
            self.log.warning("mlp-kernel: refused %s by %s: %s", what, self.username(), why)
            raise web.HTTPError(403, f"Only mlp-kernel admins may {what}: {why}.")

    def note(self, body: dict[str, Any]) -> str:
        """The admin's note (why they change it): the commit message with Git, required there."""
        note = body.get("note", "")
        if not isinstance(note, str):
            raise web.HTTPError(400, "note: expected a short text saying what you changed and why.")
        if self.ext.git_repo and not clean_note(note):
            raise web.HTTPError(
                400,
                "note: say what you changed and why; it becomes the commit message (saves go through Git).",
            )
        return clean_note(note)

    async def git_call(self, what: str, func: Any, *args: Any, **kwargs: Any) -> Any:
        """``func`` of the configured ``GitRepo`` in a thread, one at a time; Git's failures as HTTP ones."""
        ext = self.ext
        if ext.git is None:
            raise web.HTTPError(503, f"Cannot {what}: {ext.git_problem}.")
        async with ext.git_lock:
            try:
                return await asyncio.to_thread(func, *args, **kwargs)
            except GitError as e:
                self.log.warning("mlp-kernel: %s by %s: %s %s", what, self.username(), e, e.detail)
                raise web.HTTPError(e.status, f"Cannot {what}: {e}") from None

    def repo_path(self, f: SpecFile) -> str:
        assert self.ext.git is not None
        return self.ext.git.file_path(f.path.parent, f.kernelspec, f.name)

    def audit(self, f: SpecFile, action: str, note: str, **what: Any) -> None:
        audit.record(
            audit.ADMIN_CHANGE,
            user=self.username(),
            team=self.ext.admin_rule.team_of(self.current_user),
            why=note or f"{action} through the admin page (no note)",
            kernelspec=f.kernelspec,
            file=f.name,
            action=action,
            **what,
        )

    async def commit(
        self, f: SpecFile, text: str, note: str, base: str | None, action: str
    ) -> dict[str, Any]:
        """Commit ``text`` on the Git branch (or a review branch); the answer says where it went."""
        git = self.ext.git
        if git is None:  # never fall back to the disk: the GitOps sync would undo the save
            raise web.HTTPError(503, f"Not saved: {self.ext.git_problem}.")
        path = self.repo_path(f)
        author = author_of(self.display_name(), self.username(), self.ext.git_email_domain)
        saved = await self.git_call(
            f"{action} {f.kernelspec}/{f.name}",
            git.save,
            path,
            text,
            author=author,
            note=note,
            base_sha256=base,
        )
        digest = sha256(text)
        if not saved.commit:
            message = f"No change: {path} on {git.branch} already has this content; nothing was committed."
        elif saved.review:
            where = f" on {git.remote}" if saved.pushed else ""
            message = f"Sent for review as {saved.branch}{where}: deployed once merged into {git.branch}."
        else:
            where = f" and pushed to {git.remote}" if saved.pushed else ""
            message = f"Committed {saved.commit[:12]} to {git.branch}{where}."
            if not (saved.deployed and git.in_checkout(f.path.parent)):
                message += " It is deployed when the GitOps sync applies it."
        self.log.info(
            "mlp-kernel: %s by %s: %s/%s sha256 %s as commit %s on %s",
            action, self.username(), f.kernelspec, f.name, digest[:12],
            saved.commit[:12] or "(none)", saved.branch,
        )  # fmt: skip
        if saved.commit:
            self.audit(
                f, action, note, sha256=digest, commit=saved.commit, branch=saved.branch, review=saved.review
            )
        version = {
            "version": saved.commit, "at": datetime.now(timezone.utc).isoformat(), "user": author.name,
            "action": action, "sha256": digest, "size": len(text.encode("utf-8")),
        }  # fmt: skip
        git_out = {"commit": saved.commit, "branch": saved.branch, "review": saved.review, "path": path}
        return {"file": f.name, "sha256": digest, "version": version, "message": message, "git": git_out}

    async def validate_file(self, f: SpecFile, text: str) -> list[Issue]:
        """Issues of ``text`` as ``f``; ``PreviewError`` when the check itself was stopped (limits)."""
        issues = await self.work(f"checking {f.name}", validate, f.kind, text, f.name)
        if f.kind == "kernel" and not has_errors(issues):
            policy = policy_file_name(text)
            if not (f.path.parent / policy).is_file():
                issues.append(
                    Issue(
                        "metadata.kernel_provisioner.config.policy",
                        f"{policy!r} does not exist in the kernelspec directory; save the policy file first.",
                    )
                )
        return issues

    def store(self, f: SpecFile, text: str, action: str, note: str = "") -> dict[str, Any]:
        """Write ``text``, keeping the current content in history; log who changed what (never the text)."""
        current = read_text(f.path)
        history = self.ext.history
        try:
            history.record_before_save(f.kernelspec, f.name, current)
            write_atomic(f.path, text)
            version = history.add(f.kernelspec, f.name, text, self.display_name(), action)
        except PermissionError as e:  # a read-only kernelspec (docs/admin-guide.md, section 10c)
            self.log.warning("mlp-kernel: %s by %s failed: %s", action, self.username(), e)
            raise web.HTTPError(
                403,
                f"The server cannot write {e.filename or f.path}: the kernelspec or "
                "history directory is read-only here; edit the file where it is "
                "provisioned.",
            ) from None
        except OSError as e:
            self.log.warning("mlp-kernel: %s by %s failed: %s", action, self.username(), e)
            raise web.HTTPError(
                500, f"Could not {action} {f.kernelspec}/{f.name}: {e.strerror or e}."
            ) from None
        self.log.info(
            "mlp-kernel: %s by %s: %s/%s sha256 %s -> %s (%d -> %d lines), version %s",
            action,
            self.username(),
            f.kernelspec,
            f.name,
            sha256(current)[:12],
            version.sha256[:12],
            current.count("\n"),
            text.count("\n"),
            version.version,
        )
        self.audit(f, action, note, sha256=version.sha256, version=version.version)
        return {"file": f.name, "sha256": version.sha256, "version": version.to_json()}


class MeHandler(MlpKernelHandler):
    @web.authenticated
    @authorized("read")
    async def get(self) -> None:
        ok, why = await self.can_save()
        ext = self.ext
        saves = {"git": bool(ext.git_repo), "review": ext.git_review, "branch": ext.git_branch}
        saves.update(remote=ext.git_remote, problem=ext.git_problem)
        self.finish(
            {
                "username": self.username(),
                "name": self.display_name(),
                "team": self.ext.admin_rule.team_of(self.current_user),
                "is_admin": ok,
                "why_not": why,
                "saves": saves,
            }
        )


class KernelspecsHandler(MlpKernelHandler):
    @web.authenticated
    @authorized("read")
    async def get(self) -> None:
        self.finish({"kernelspecs": self.ext.files.list_specs()})


class KernelspecHandler(MlpKernelHandler):
    @web.authenticated
    @authorized("read")
    async def get(self, kernelspec: str) -> None:
        try:
            spec_dir = self.ext.files.spec_dir(kernelspec)
            allowed = self.ext.files.allowed_files(kernelspec)
        except FileRefused as e:
            raise web.HTTPError(e.status, str(e)) from None
        files = [{"file": f, "kind": k} for f, k in allowed.items()]
        out: dict[str, Any] = {
            "name": kernelspec,
            "files": files,
            "members": [],
            "flavors": [],
            "render_targets": [],
            "render_note": "",
        }
        policy_name = policy_file_name(read_text(spec_dir / KERNEL_JSON))
        try:
            out.update(
                await self.work(
                    f"reading {policy_name}", policy_names, read_text(spec_dir / policy_name), policy_name
                )
            )
        except PreviewError as e:
            out["render_note"] = f"No dry run: {e}"
        except ImportError:
            pass
        self.finish(out)


class FileHandler(MlpKernelHandler):
    @web.authenticated
    @authorized("read")
    async def get(self, kernelspec: str, name: str) -> None:
        f = self.resolve(kernelspec, name)
        text: str | None = read_text(f.path) if f.path.is_file() else None
        extra: dict[str, Any] = {}
        if self.ext.git_repo:  # what the next save builds on: the branch, not this disk
            git = self.ext.git
            path = self.repo_path(f) if git else ""
            tip = await self.git_call(f"read {kernelspec}/{name}", git.tip) if git else ""
            text = await self.git_call(f"read {kernelspec}/{name}", git.read, tip, path) if git else None
            # what the kernels run now: the checkout's commit, or "" when a GitOps sync deploys it
            deployed = (
                await self.git_call("read the deployed revision", git.deployed, f.path.parent) if git else ""
            )
            extra["git"] = {"commit": tip, "branch": self.ext.git_branch, "path": path, "deployed": deployed}
        self.finish(
            {
                "kernelspec": kernelspec,
                "file": name,
                "kind": f.kind,
                "content": text or "",
                "sha256": sha256(text or ""),
                "exists": text is not None,
                **extra,
            }
        )

    @web.authenticated
    async def put(self, kernelspec: str, name: str) -> None:
        f = self.resolve(kernelspec, name)
        await self.require_admin(f"save {kernelspec}/{name}")
        body = self.body()
        text = body.get("content")
        if not isinstance(text, str):
            return self.fail(400, "content: expected the file's full text as a string.")
        note = self.note(body)
        base = body.get("base_sha256")
        if base is not None and not isinstance(base, str):
            return self.fail(400, "base_sha256: expected the sha256 of the file as you loaded it.")
        if not self.ext.git_repo and base is not None and base != sha256(read_text(f.path)):
            return self.fail(
                409,
                f"{kernelspec}/{name} changed on the server since you loaded it: reload, "
                "re-apply your edit and save again.",
            )
        try:
            issues = await self.validate_file(f, text)
        except PreviewError as e:
            return self.fail(e.status, f"Not saved: {e}", e.issues)
        if has_errors(issues):
            return self.fail(
                400,
                f"Not saved: {name} has {sum(i.severity == 'error' for i in issues)} "
                "error(s); fix them and save again.",
                issues,
            )
        if self.ext.git_repo:
            saved = await self.commit(f, text, note, base, "save")
        else:
            saved = self.store(f, text, "save", note)
        self.finish({**saved, "issues": [i.to_json() for i in issues]})


class ValidateHandler(MlpKernelHandler):
    @web.authenticated
    @authorized("read")
    async def post(self, kernelspec: str, name: str) -> None:
        f = self.resolve(kernelspec, name)
        text = self.body().get("content")
        if not isinstance(text, str):
            return self.fail(400, "content: expected the file's full text as a string.")
        try:
            issues = await self.validate_file(f, text)
        except PreviewError as e:
            return self.fail(e.status, str(e), [Issue("", str(e))])
        self.finish({"valid": not has_errors(issues), "issues": [i.to_json() for i in issues]})


class HistoryHandler(MlpKernelHandler):
    @web.authenticated
    @authorized("read")
    async def get(self, kernelspec: str, name: str, version: str | None = None) -> None:
        f = self.resolve(kernelspec, name)
        git = self.ext.git
        if version is None:
            if self.ext.git_repo and git:
                versions = await self.git_call("list the history", git.history, self.repo_path(f))
            else:
                versions = [v.to_json() for v in self.ext.history.list(f.kernelspec, f.name)]
            self.finish({"versions": versions})
            return
        try:
            if self.ext.git_repo and git:
                text = await self.git_call("read the version", git.read_version, self.repo_path(f), version)
            else:
                text = self.ext.history.read(f.kernelspec, f.name, version)
        except KeyError as e:
            raise web.HTTPError(404, str(e.args[0])) from None
        self.finish({"version": version, "content": text, "sha256": sha256(text)})


class RollbackHandler(MlpKernelHandler):
    @web.authenticated
    async def post(self, kernelspec: str, name: str) -> None:
        f = self.resolve(kernelspec, name)
        await self.require_admin(f"roll back {kernelspec}/{name}")
        body = self.body()
        version, base = body.get("version"), body.get("base_sha256")
        if base is not None and not isinstance(base, str):
            return self.fail(400, "base_sha256: expected the sha256 of the file as you loaded it.")
        git = self.ext.git if self.ext.git_repo else None
        if self.ext.git_repo and git is None:
            raise web.HTTPError(503, f"Cannot roll back: {self.ext.git_problem}.")
        try:
            if git:
                args = (self.repo_path(f), str(version))
                text = await self.git_call("read the version", git.read_version, *args)
            else:
                text = self.ext.history.read(f.kernelspec, f.name, str(version))
        except KeyError as e:
            raise web.HTTPError(404, f"Cannot roll back: {e.args[0]}.") from None
        try:
            issues = await self.validate_file(f, text)
        except PreviewError as e:
            return self.fail(e.status, f"Not rolled back: {e}", e.issues)
        if has_errors(issues):
            return self.fail(400, f"Not rolled back: version {version} of {name} is invalid now.", issues)
        note = self.note({"note": body.get("note") or f"Roll back {name} to {str(version)[:12]}"})
        if git:
            self.finish(await self.commit(f, text, note, base, "rollback"))
        else:
            self.finish(self.store(f, text, "rollback", note))


class RenderHandler(MlpKernelHandler):
    @web.authenticated
    @authorized("read")
    async def post(self, kernelspec: str) -> None:
        body = self.body()
        try:
            spec_dir = self.ext.files.spec_dir(kernelspec)
            allowed = self.ext.files.allowed_files(kernelspec)
        except FileRefused as e:
            raise web.HTTPError(e.status, str(e)) from None
        overrides = body.get("files") or {}
        if not isinstance(overrides, dict) or not all(isinstance(v, str) for v in overrides.values()):
            return self.fail(400, "files: expected an object of file name -> unsaved text.")
        refused = sorted(set(overrides) - set(allowed))
        if refused:
            return self.fail(
                400,
                f"files.{refused[0]}: not an editable file of {kernelspec} ({', '.join(sorted(allowed))}).",
            )
        kernel_json = overrides.get(KERNEL_JSON, read_text(spec_dir / KERNEL_JSON))
        member, flavor = body.get("member"), body.get("flavor")
        for key, value in (("member", member), ("flavor", flavor)):
            if not isinstance(value, str) or not value:
                return self.fail(400, f"{key}: expected the name of a policy {key}.")
        assert isinstance(member, str) and isinstance(flavor, str)
        user = body.get("user") or self.username()
        if not isinstance(user, str):
            return self.fail(400, "user: expected a user name.")
        try:
            out = await self.work(
                "the render",
                render_pod,
                spec_dir,
                policy_file_name(kernel_json),
                overrides,
                member,
                flavor,
                user,
            )
        except PreviewError as e:
            return self.fail(e.status, str(e), e.issues)
        self.finish(out)


class RenderTargetsHandler(MlpKernelHandler):
    """What the dry-run form offers for the admin's draft: the (member, flavor) pairs of the policy that the
    draft kernel.json names (unsaved texts in ``files`` win), or why none can be rendered."""

    @web.authenticated
    @authorized("read")
    async def post(self, kernelspec: str) -> None:
        try:
            spec_dir = self.ext.files.spec_dir(kernelspec)
        except FileRefused as e:
            raise web.HTTPError(e.status, str(e)) from None
        overrides = self.body().get("files") or {}
        if not isinstance(overrides, dict) or not all(isinstance(v, str) for v in overrides.values()):
            return self.fail(400, "files: expected an object of file name -> unsaved text.")
        policy_name = policy_file_name(overrides.get(KERNEL_JSON, read_text(spec_dir / KERNEL_JSON)))
        text = overrides.get(policy_name, read_text(spec_dir / policy_name))
        try:
            self.finish(await self.work(f"reading {policy_name}", policy_names, text, policy_name))
        except PreviewError as e:
            self.fail(e.status, f"No dry run: {e}", e.issues)


class PlacementPreviewHandler(MlpKernelHandler):
    @web.authenticated
    @authorized("read")
    async def post(self) -> None:
        body = self.body()
        managed = self.ext.files.kernelspec_names
        kernelspec = body.get("kernelspec") or (managed[0] if managed else "gpu-auto")
        try:
            spec_dir = self.ext.files.spec_dir(str(kernelspec))
        except FileRefused as e:
            raise web.HTTPError(e.status, str(e)) from None
        policy_name = policy_file_name(read_text(spec_dir / KERNEL_JSON))
        policy_text = body.get("policy")
        if policy_text is None:
            policy_text = read_text(spec_dir / policy_name)
        if not isinstance(policy_text, str):
            return self.fail(400, "policy: expected the policy YAML text (omit it to use the saved policy).")
        try:
            self.finish(
                await self.work(
                    "the placement preview", place, policy_text, policy_name, body.get("request") or {}
                )
            )
        except PreviewError as e:
            self.fail(e.status, str(e), e.issues)


class FleetHandler(MlpKernelHandler):
    @web.authenticated
    @authorized("read")
    async def get(self) -> None:
        await self.require_admin("view the fleet")
        kernels = self.ext.refresh_metrics()
        self.finish({"kernels": [k.to_json() for k in kernels]})


SEG = r"([^/]+)"


def handlers(base_url: str) -> list[tuple[str, type]]:
    api = url_path_join(base_url, "mlp-kernel", "api")
    files = f"/kernelspecs/{SEG}/files/{SEG}"
    routes = [
        ("/me", MeHandler),
        ("/kernelspecs", KernelspecsHandler),
        (f"/kernelspecs/{SEG}", KernelspecHandler),
        (files, FileHandler),
        (files + "/validate", ValidateHandler),
        (files + "/history", HistoryHandler),
        (files + f"/history/{SEG}", HistoryHandler),
        (files + "/rollback", RollbackHandler),
        (f"/kernelspecs/{SEG}/render", RenderHandler),
        (f"/kernelspecs/{SEG}/render/targets", RenderTargetsHandler),
        ("/placement/preview", PlacementPreviewHandler),
        ("/fleet", FleetHandler),
    ]
    return [(api + path, handler) for path, handler in routes]
