"""Browser tests: Debian's Chromium driven by Playwright against pytest-django's live server.

Never a downloaded browser: Playwright launches /usr/bin/chromium with the flags measured on this
machine. Screenshots go to test-artifacts/ for people to look at.
"""

from __future__ import annotations

import functools
import os
import pathlib

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = pathlib.Path(__file__).resolve().parents[2] / "test-artifacts"

# Playwright's sync API runs an event loop in this thread; Django's ORM calls in the test are still
# synchronous and safe here.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="module")
def browser():
    # Module scope, not session: Playwright's sync API keeps an event loop on this thread while it
    # runs, and async_to_sync (websocket tests on the same xdist worker) refuses to run beside one.
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield instance
        instance.close()


# Every page reports what the Content-Security-Policy blocked: Chromium logs each refusal to the console,
# and this listener names the directive and the blocked resource too (it runs before the page's scripts).
CSP_MARKER = "Content Security Policy"
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`Content Security Policy violation: ${event.violatedDirective} blocked ${event.blockedURI || "inline"}`
    + ` at ${event.sourceFile || event.documentURI}:${event.lineNumber}`);
});
"""


@pytest.fixture
def csp_violations():
    """What the Content-Security-Policy blocked on the test's pages; a test that leaves any fails."""
    seen: list[str] = []
    yield seen
    if seen:
        pytest.fail("Content-Security-Policy violations:\n" + "\n".join(seen), pytrace=False)


def new_page(browser, csp_violations: list[str], **context_options):
    context = browser.new_context(**context_options)
    context.add_init_script(REPORT_CSP_VIOLATIONS)
    page = context.new_page()
    page.on(
        "console",
        lambda message: (
            csp_violations.append(f"{page.url}: {message.text}") if CSP_MARKER in message.text else None
        ),
    )
    page.set_default_timeout(10_000)
    return context, page


@pytest.fixture
def page(browser, csp_violations):
    context, page = new_page(browser, csp_violations, viewport={"width": 1280, "height": 900})
    yield page
    context.close()


@pytest.fixture
def narrow_page(browser, csp_violations):
    context, page = new_page(
        browser,
        csp_violations,
        viewport={"width": 360, "height": 740},
        is_mobile=True,
        has_touch=True,
    )
    yield page
    context.close()


@pytest.fixture
def screenshot():
    """screenshot(page, "name") saves test-artifacts/name.png."""
    ARTIFACTS.mkdir(exist_ok=True)

    def take(page, name: str) -> pathlib.Path:
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


def sign_in(page, base_url: str, user, password: str = "pass-word-123") -> None:
    """Sign `user` in through the real login form of the server at `base_url`."""
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Username").fill(user.get_username())
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state("networkidle")


@pytest.fixture
def login(live_server):
    """login(page, user) signs in through the real login form."""

    def signed_in(page, user, password: str = "pass-word-123") -> None:
        sign_in(page, live_server.url, user, password)

    return signed_in


@pytest.fixture
def asgi_live_server(settings, clinic):
    """The whole ASGI application (pages and websockets) in its own process on the Redis channel layer,
    with the clinic moved to a zone where it is daytime (the server runs on the real clock)."""
    from tests.scheduling.asgi_server import asgi_server
    from tests.scheduling.queue_helpers import isolate_channel_layer, move_to_daytime_zone

    move_to_daytime_zone(clinic)
    with asgi_server(isolate_channel_layer(settings)) as running:
        yield running


# Accessibility: axe-core (vendored, see vendor/README.md) injected through the DevTools protocol with
# page.evaluate: an added <script> tag would be inline, refused by the Content-Security-Policy and
# reported as a violation. WCAG 2.0/2.1 at levels A and AA is the standard; best-practice adds the
# landmark, heading and region rules that keep pages usable by screen reader and keyboard.
AXE = pathlib.Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
RUN_AXE = """
async ([tags, disabled, preload]) => {
  const rules = Object.fromEntries(disabled.map((id) => [id, {enabled: false}]));
  const result = await axe.run(document, {runOnly: {type: "tag", values: tags}, rules, preload});
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
    nodes: v.nodes.map((n) => ({target: n.target.join(" "), summary: n.failureSummary})),
  }));
}
"""


@functools.cache
def axe_source() -> str:
    return AXE.read_text(encoding="utf-8")


def axe_violations(page, *, disabled_rules: tuple[str, ...] = (), preload: bool = True) -> list[dict]:
    """axe-core's violations on the page as it is now (after any htmx swap).

    preload=False keeps axe from reading the page's style sheets itself: it parses an @import-ed sheet
    by adding a <style> element, which the Content-Security-Policy refuses (Django admin's forms.css
    imports widgets.css). Only the css-orientation-lock rule needs them; our own sheets import nothing.
    """
    page.wait_for_load_state("load")
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(axe_source())
    return page.evaluate(RUN_AXE, [AXE_TAGS, list(disabled_rules), preload])


def format_violations(violations: list[dict]) -> str:
    lines = []
    for v in violations:
        lines.append(f"- {v['id']} ({v['impact']}): {v['help']} <{v['helpUrl']}>")
        for node in v["nodes"][:10]:
            summary = " ".join(node["summary"].split())
            lines.append(f"    {node['target']}: {summary}")
        if len(v["nodes"]) > 10:
            lines.append(f"    ... and {len(v['nodes']) - 10} more")
    return "\n".join(lines)


def assert_accessible(
    page, context: str = "", *, disabled_rules: tuple[str, ...] = (), preload: bool = True
) -> None:
    """Fails with axe-core's violations (rule, impact, selectors, help) on the page as it is now.

    disabled_rules is only for third-party pages we do not render (Django admin, Swagger UI); say why
    where it is used.
    """
    violations = axe_violations(page, disabled_rules=disabled_rules, preload=preload)
    if violations:
        where = f"{context} ({page.url})" if context else page.url
        pytest.fail(f"Accessibility violations on {where}:\n{format_violations(violations)}", pytrace=False)
