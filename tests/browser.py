"""A real headless Chromium (Debian's `chromium`, driven by Playwright) for dashboard tests
and the dashboard benchmark. Never `playwright install`: the browser comes from apt."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, ConsoleMessage, Dialog, Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
APT_LINE = "apt-get update && apt-get install -y chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    if Path(CHROMIUM).exists():
        return CHROMIUM
    found = shutil.which("chromium")
    if not found:
        raise RuntimeError(f"Debian's chromium is not installed; install it: {APT_LINE}")
    return found


@dataclass
class PageProblems:
    """What the page reported on its own: console errors, uncaught exceptions, dialogs."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    expected: list[str] = field(default_factory=list)  # console errors a test asked for

    def assert_none(self) -> None:
        unexpected = [
            error
            for error in self.console_errors
            if not any(marker in error for marker in self.expected)
        ]
        assert unexpected == [], unexpected
        assert self.page_errors == [], self.page_errors
        assert self.dialogs == [], self.dialogs


@contextmanager
def chromium() -> Iterator[Browser]:
    """A launched headless Chromium."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


def watch(page: Page) -> PageProblems:
    """Record the page's console errors, exceptions and dialogs (dismissing dialogs)."""
    problems = PageProblems()

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.console_errors.append(message.text)

    def on_dialog(dialog: Dialog) -> None:
        problems.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.page_errors.append(str(error)))
    page.on("dialog", on_dialog)
    return problems


# An arrow function or a function expression, as opposed to a bare expression.
_FUNCTION = re.compile(r"\s*(async\b\s*)?(function\b|\([^)]*\)\s*=>|[A-Za-z_$][\w$]*\s*=>)")
_POLL = """async ([arg, timeoutMs]) => {
    const predicate = %s;
    const deadline = performance.now() + timeoutMs;
    while (!(await predicate(arg))) {
        if (performance.now() > deadline) throw new Error(`waited ${timeoutMs} ms for: ` + %s);
        await new Promise((resolve) => requestAnimationFrame(resolve));
    }
}"""


def wait_for_function(
    page: Page, expression: str, arg: Any = None, timeout: float = 10_000
) -> None:
    """`page.wait_for_function`, polling at each animation frame as it does, for a page
    whose Content-Security-Policy forbids eval: Playwright's own waiting evals the
    expression inside the page; this sends it through DevTools, as `page.evaluate` does."""
    predicate = expression if _FUNCTION.match(expression) else f"() => ({expression})"
    page.evaluate(_POLL % (predicate, json.dumps(expression)), [arg, timeout])
