"""JupyterHub configuration for GPU (auto): the hub says who the user is and which team pays.

GPU (auto) takes the user from ``JUPYTERHUB_USER`` in the single-user server's own environment (every spawner
sets it) and the team from ``MLP_KERNEL_TEAM`` (docs/admin-guide.md, "JupyterHub"). The hub knows the team as
one of the user's groups, so a ``pre_spawn_hook`` puts it into the spawner's environment before each start:
the user cannot change it afterwards (a client's ``KERNEL_TEAM`` never overrides it). It also passes all of
the user's hub groups as ``MLP_KERNEL_USER_GROUPS``, which the admin page's ``admin_groups`` reads for the
server's owner only.

Copy what you need into your hub's ``jupyterhub_config.py`` (with the Zero to JupyterHub chart:
``hub.extraConfig``). tests/hub loads this file as it is, then adds what only the test hub needs.
"""

TEAM_GROUP_PREFIX = "team-"  # hub group "team-vision" -> MLP_KERNEL_TEAM=vision


def mlp_kernel_identity(spawner):
    """``Spawner.pre_spawn_hook``: the team from the hub group named ``team-<team>``, and the user's groups.

    A user in no team group gets no team (cost labels then say none); a user in two is refused with a message
    the hub shows on the spawn page and in its API's answer (an ``HTTPError``: any other exception reaches the
    user as an unexplained 500), since one server bills one team.
    """
    from tornado.web import HTTPError

    groups = sorted(group.name for group in spawner.user.groups)
    teams = [name[len(TEAM_GROUP_PREFIX) :] for name in groups if name.startswith(TEAM_GROUP_PREFIX)]
    if len(teams) > 1:
        raise HTTPError(
            403,
            f"GPU (auto): {spawner.user.name} is in {len(teams)} team groups "
            f"({', '.join(TEAM_GROUP_PREFIX + t for t in teams)}); a server bills one team: "
            "ask a hub admin to remove all but one.",
        )
    spawner.environment.pop("MLP_KERNEL_TEAM", None)
    if teams:
        spawner.environment["MLP_KERNEL_TEAM"] = teams[0]
    spawner.environment["MLP_KERNEL_USER_GROUPS"] = ",".join(groups)


c = get_config()  # noqa: F821 (JupyterHub's config loader provides get_config)
c.Spawner.pre_spawn_hook = mlp_kernel_identity
# JupyterLab, where the GPU (auto) status bar item and panel live. The kernelspec and the extensions are part
# of the single-user image (pip install mlp-kernel), read-only for users (docs/admin-guide.md, section 10c).
c.Spawner.default_url = "/lab"
