"""schemathesis against the server's own OpenAPI document (no 5xx), and the web chat page in headless
chromium (playwright): send a message, see the streamed reply; the screenshot is kept as an artifact."""
import shutil
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = shutil.which("chromium")


def test_openapi_has_no_server_errors(server):
    import schemathesis

    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    failures = []
    for operation in schema.get_all_operations():
        run_operation(operation.ok(), server.url, failures)
    assert not failures, failures[:3]


def run_operation(op, url: str, failures: list) -> None:
    from hypothesis import HealthCheck, given, settings

    @settings(max_examples=8, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=op.as_strategy())
    def check(case):
            if isinstance(case.body, dict):
                case.body.setdefault("max_tokens", 4)     # generated prompts, bounded work
                if "options" in case.body and isinstance(case.body["options"], dict):
                    case.body["options"]["num_predict"] = 4
            response = case.call(base_url=url, timeout=60)
            if response.status_code >= 500:
                failures.append((op.label, case.body, response.status_code, response.text[:300]))
    check()


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)")
def test_web_chat_streams_a_reply(server):
    from playwright.sync_api import sync_playwright
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        requests = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto(server.url + "/")
        page.wait_for_function("document.querySelectorAll('#model option').length >= 2")
        page.select_option("#model", "smollm2:135m")
        page.fill("#input", "What is the capital of France?")
        page.click("#send")
        # the built-in model samples (temperature 0.2), so expect a streamed answer, not particular words
        page.wait_for_function("document.querySelector('.assistant .answer')?.textContent.trim().length > 0",
                               timeout=60000)
        assert page.inner_text(".assistant .answer").strip()  # streamed text is on the page
        page.screenshot(path=str(ARTIFACTS / "web-chat.png"), full_page=True)
        browser.close()
    assert all(u.startswith(server.url) for u in requests), "the page loads nothing from elsewhere"
