"""The JupyterLab extension in a real browser: status item, GPU panel, admin page (admin and non-admin).

One ``jupyter lab`` serves the whole module; the tests run in file order and each leaves screenshots of the
states it saw under test-artifacts/browser/ (the good ones are copied to docs/img/ for docs/ui.md).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from .conftest import ADMIN, USER, Lab, open_lab, shot

pytestmark = pytest.mark.timeout(600)

ITEM = '[data-mlp-kernel="status-item"]'
RUNNING = re.compile(r"x\d+ · \w+ · .* · \$\d+\.\d\d")
NOTEBOOK = "gpu.ipynb"


def _notebook(lab: Lab, name: str, kernel: str, display: str) -> None:
    lab.api(
        "PUT",
        f"api/contents/{name}",
        {
            "type": "notebook",
            "format": "json",
            "content": {
                "nbformat": 4,
                "nbformat_minor": 5,
                "metadata": {"kernelspec": {"name": kernel, "display_name": display, "language": "python"}},
                "cells": [
                    {
                        "cell_type": "code",
                        "id": "c1",
                        "metadata": {},
                        "outputs": [],
                        "execution_count": None,
                        "source": "print(6 * 7)",
                    }
                ],
            },
        },
    )


def _run_first_cell(page: Any) -> None:
    page.locator(".jp-Notebook .jp-Cell").first.click()
    page.keyboard.press("Shift+Enter")


@pytest.fixture(scope="module")
def notebook_page(browser: Any, lab: Lab) -> Any:
    _notebook(lab, NOTEBOOK, "gpu-auto", "GPU (auto)")
    page = open_lab(browser, lab, ADMIN, f"tree/{NOTEBOOK}")
    yield page
    page.context.close()


def test_status_item_goes_from_cpu_only_to_running_to_released(notebook_page: Any) -> None:
    from playwright.sync_api import expect

    page = notebook_page
    item = page.locator(ITEM)
    expect(item).to_have_text("CPU only", timeout=120_000)
    shot(page, "ui-status-cpu-only")

    _run_first_cell(page)
    expect(page.locator(".jp-OutputArea-output").filter(has_text="42")).to_be_visible(timeout=180_000)
    expect(item).to_have_text(RUNNING, timeout=60_000)
    shot(page, "ui-status-running")

    item.click()
    panel = page.locator("#mlp-kernel-gpu-panel")
    expect(panel).to_be_visible()
    expect(panel.locator('[data-mlp-kernel="idle-countdown"]')).to_have_text(re.compile(r"\d+:\d\d"))
    expect(panel).to_contain_text("Why here")
    shot(page, "ui-panel-running")

    expect(item).to_have_text(re.compile(r"^Released \(idle"), timeout=180_000)
    expect(page.locator(".Toastify__toast").filter(has_text="GPU released")).to_be_visible(timeout=30_000)
    shot(page, "ui-status-released-idle")


def test_release_gpu_button_releases_the_running_kernel(notebook_page: Any) -> None:
    from playwright.sync_api import expect

    page = notebook_page
    item = page.locator(ITEM)
    _run_first_cell(page)
    expect(item).to_have_text(RUNNING, timeout=180_000)
    panel = page.locator("#mlp-kernel-gpu-panel")
    if not panel.is_visible():
        item.click()
    release = panel.locator('[data-mlp-kernel="release"]')
    expect(release).to_be_enabled()
    release.click()
    expect(item).to_have_text("Released (by you)", timeout=120_000)
    expect(release).to_be_disabled()
    shot(page, "ui-panel-released-by-user")


def test_status_item_reconnects_after_a_kernel_restart(notebook_page: Any) -> None:
    from playwright.sync_api import expect

    page = notebook_page
    item = page.locator(ITEM)
    _run_first_cell(page)
    expect(item).to_have_text(RUNNING, timeout=180_000)
    page.get_by_role("button", name="Restart the kernel", exact=True).click()
    page.locator(".jp-Dialog .jp-Dialog-button.jp-mod-accept").click()
    # A restart starts a new gateway process; the item re-opens the comm and shows its first snapshot.
    expect(item).to_have_text("CPU only", timeout=120_000)


def test_status_item_is_hidden_for_other_kernels(browser: Any, lab: Lab) -> None:
    from playwright.sync_api import expect

    _notebook(lab, "plain.ipynb", "python3", "Python 3")
    page = open_lab(browser, lab, ADMIN, "tree/plain.ipynb")
    try:
        idle = page.get_by_role("button", name=re.compile(r"Python 3.*\| Idle"))
        expect(idle).to_be_visible(timeout=120_000)
        _run_first_cell(page)
        expect(page.locator(".jp-OutputArea-output").filter(has_text="42")).to_be_visible(timeout=120_000)
        expect(page.locator(ITEM)).to_be_hidden()
        shot(page, "ui-other-kernel")
    finally:
        page.context.close()


def _open_admin(page: Any) -> Any:
    page.keyboard.press("Control+Shift+C")
    page.locator(".lm-CommandPalette-input").fill("GPU (auto) admin")
    page.keyboard.press("Enter")
    admin = page.locator(".mlp-kernel-Admin")
    admin.wait_for()
    return admin


def _policy_tab(admin: Any) -> Any:
    admin.locator('[data-mlp-kernel-tab="policy.yaml"]').click()
    editor = admin.locator('[data-mlp-kernel="editor"]')
    editor.wait_for()
    return editor


def test_admin_breaks_the_policy_sees_the_error_then_saves_a_fix(browser: Any, lab: Lab) -> None:
    from playwright.sync_api import expect

    page = open_lab(browser, lab, ADMIN)
    try:
        admin = _open_admin(page)
        editor = _policy_tab(admin)
        expect(admin.locator('[data-mlp-kernel="valid"]')).to_be_visible()
        original = editor.input_value()
        editor.fill(original.replace("price_per_gpu_hour: 0", "price_per_gpu_hour: cheap"))
        issues = admin.locator('[data-mlp-kernel="issues"]')
        expect(issues.locator('[data-mlp-kernel="invalid"]')).to_be_visible(timeout=30_000)
        expect(issues).to_contain_text("price_per_gpu_hour")
        expect(issues).to_contain_text(re.compile(r"line \d+"))
        shot(page, "ui-admin-policy-error")

        admin.locator('[data-mlp-kernel="review"]').click()
        expect(admin.locator('[data-mlp-kernel="diff"]')).to_contain_text("+    price_per_gpu_hour: cheap")
        admin.locator('[data-mlp-kernel="confirm-save"]').click()
        expect(admin.locator('[data-mlp-kernel="notice"]')).to_contain_text("Not saved", timeout=30_000)
        assert "cheap" not in (lab.spec_dir / "policy.yaml").read_text()

        editor = _policy_tab(admin)
        editor.fill(original.replace("idle_timeout: 15m", "idle_timeout: 16m"))
        expect(admin.locator('[data-mlp-kernel="valid"]')).to_be_visible(timeout=30_000)
        admin.locator('[data-mlp-kernel="review"]').click()
        expect(admin.locator('[data-mlp-kernel="diff"]')).to_contain_text("+idle_timeout: 16m")
        shot(page, "ui-admin-diff")
        admin.locator('[data-mlp-kernel="confirm-save"]').click()
        notice = admin.locator('[data-mlp-kernel="notice"]')
        expect(notice).to_contain_text("Saved policy.yaml", timeout=30_000)
        assert "idle_timeout: 16m" in (lab.spec_dir / "policy.yaml").read_text()
        shot(page, "ui-admin-saved")

        # Dry run with an unsaved kernel.json that points at the platform policy (private/aws members).
        admin.locator('[data-mlp-kernel-tab="kernel.json"]').click()
        editor = admin.locator('[data-mlp-kernel="editor"]')
        platform = editor.input_value().replace('"policy": "policy.yaml"', '"policy": "platform-policy.yaml"')
        editor.fill(platform)
        expect(admin.locator('[data-mlp-kernel="valid"]')).to_be_visible(timeout=30_000)
        admin.get_by_text("Dry run: render the Pod").click()
        admin.locator('[data-mlp-kernel="render-member"]').fill("private")
        admin.locator('[data-mlp-kernel="render-flavor"]').fill("silver")
        admin.locator('[data-mlp-kernel="render"]').click()
        output = admin.locator('[data-mlp-kernel="render-output"]')
        expect(output).to_contain_text('"kind": "Pod"', timeout=30_000)
        expect(output).to_contain_text('"mlp.io/flavor": "silver"')
        output.scroll_into_view_if_needed()
        shot(page, "ui-admin-render")

        admin.locator('[data-mlp-kernel-tab="fleet"]').click()
        fleet = admin.locator('[data-mlp-kernel="fleet"] table')
        expect(fleet).to_contain_text(re.compile(r"released|running|cpu_only"), timeout=30_000)
        shot(page, "ui-admin-fleet")
    finally:
        page.context.close()


def test_non_admin_can_view_but_saving_is_refused(browser: Any, lab: Lab) -> None:
    from playwright.sync_api import expect

    page = open_lab(browser, lab, USER)
    try:
        admin = _open_admin(page)
        expect(admin.locator('[data-mlp-kernel="read-only"]')).to_contain_text(USER)
        editor = _policy_tab(admin)
        before = (lab.spec_dir / "policy.yaml").read_text()
        editor.fill(editor.input_value() + "\n# bob was here\n")
        expect(admin.locator('[data-mlp-kernel="valid"]')).to_be_visible(timeout=30_000)
        admin.locator('[data-mlp-kernel="review"]').click()
        admin.locator('[data-mlp-kernel="confirm-save"]').click()
        notice = admin.locator('[data-mlp-kernel="notice"]')
        expect(notice).to_contain_text("Saving refused", timeout=30_000)
        expect(notice).to_contain_text("HTTP 403")
        assert (lab.spec_dir / "policy.yaml").read_text() == before
        shot(page, "ui-admin-refused")
    finally:
        page.context.close()
