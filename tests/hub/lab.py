"""What a person does through the hub in Chromium: sign up, log in, open a notebook, run its cells.

Shared by tests/hub (local backend) and tests/cluster/test_hub_real.py (the real control plane). Notebooks
are written into the user's home before they are opened, so the test needs no clicks in the file browser;
cells run with Shift+Enter once the kernel is idle, as a person would run them.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from .conftest import ARTIFACTS, Hub

PASSWORDS = {"alice": "alice-Ge4-long-secret", "bob": "bob-Xq7-other-secret"}  # bcrypt-hashed by the hub


def write_notebook(path: Path, kernelspec: str, cells: list[str]) -> None:
    """A notebook of code ``cells`` whose kernel is ``kernelspec``."""
    nb_cells = [
        {"cell_type": "code", "metadata": {}, "source": s, "outputs": [], "execution_count": None}
        for s in cells
    ]
    spec = {"name": kernelspec, "display_name": kernelspec, "language": "python"}
    nb = {"cells": nb_cells, "metadata": {"kernelspec": spec}, "nbformat": 4, "nbformat_minor": 5}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb))


def sign_up_and_log_in(page: Any, hub: Hub, user: str) -> None:
    """The hub's own pages, as a person would: sign up (NativeAuthenticator), log in, wait for JupyterLab."""
    page.goto(f"{hub.url}/hub/signup")
    page.fill("#username_input", user)
    page.fill("#password_input", PASSWORDS[user])
    page.fill("#password_confirmation_input", PASSWORDS[user])
    page.click("#signup_submit")
    page.wait_for_load_state()
    page.goto(f"{hub.url}/hub/login")
    page.fill("#username_input", user)
    page.fill("#password_input", PASSWORDS[user])
    page.click("#login_submit")
    # The hub spawns the server (spawn-pending page), then the proxy routes /user/<user>/ to it.
    page.wait_for_url(f"**/user/{user}/lab**", timeout=150_000)
    page.wait_for_selector(".jp-LabShell", timeout=120_000)


def open_notebook(page: Any, hub: Hub, user: str, notebook: str) -> None:
    """Open ``notebook`` through the hub's URL and wait until its kernel is idle."""
    page.goto(f"{hub.url}/user/{user}/lab/tree/{notebook}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
    # A cell run before the session has its kernel is silently dropped by JupyterLab: wait for "Idle" first.
    page.locator(".jp-StatusBar-Widget").get_by_text("| Idle").wait_for(timeout=120_000)


def output(page: Any, index: int) -> str:
    return str(page.locator(".jp-Notebook .jp-Cell").nth(index).locator(".jp-OutputArea").inner_text())


def run_cell(page: Any, index: int, expect: str, timeout_s: float = 180.0) -> str:
    """Select cell ``index``, Shift+Enter, and wait until its output contains ``expect``."""
    page.locator(".jp-Notebook .jp-Cell").nth(index).locator(".cm-content").click()
    page.keyboard.press("Shift+Enter")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = output(page, index)
        if expect in text:
            return text
        page.wait_for_timeout(250)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"cell-{index}.png"))
    raise AssertionError(
        f"cell {index} did not print {expect!r} in {timeout_s} s; it printed:\n{output(page, index)}"
    )
