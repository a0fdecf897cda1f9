"""The built docs site shows all of its code: no code block or code span is cut off at the column edge.

`make docs` runs this after the build (scripts/docs.sh check), in the docs venv, which has selenium. It
serves ``site/`` on loopback, opens every page in Debian's headless Chromium (launched as
scripts/e2e/browser.py does) at a desktop and a narrow width, and checks every ``<pre>`` and ``<code>``
element of the page's content:

- content wider than its box (``scrollWidth > clientWidth``) must scroll, with a horizontal scrollbar
  that takes room on the page (a scrollbar that only shows on hover, or none, hides the rest of the line);
- no code may reach past the content column or the window, unless a box around it scrolls visibly.

Screenshots of every page (and of each offending element) go to ``--out`` (default: a temp dir, printed).
Exit 0 when every page passes, 1 with the list of offenders otherwise, 2 when Chromium is missing.

    python scripts/docs_layout.py [--site site] [--out DIR] [--page operators.html ...]
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

CHROMIUM_FLAGS = (  # scripts/e2e/browser.py's
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
WIDTHS = (1280, 760)  # Material's desktop layout with both sidebars, and its one-column layout
HEIGHT = 1000
#: Pages the issue was seen on: checked first, and always screenshotted.
KEY_PAGES = ("index.html", "getting-started.html", "operators.html", "sandbox.html")

# Runs in the page; returns one description per offending element.
FIND_CLIPPED_CODE = """
const content = document.querySelector('article.md-content__inner') || document.body;
const column = content.getBoundingClientRect();
const limit = Math.min(column.right, document.documentElement.clientWidth);
const screenHeight = window.innerHeight;
const found = [];
// A horizontal scrollbar a reader sees: it takes room under the box and its thumb has a colour.
const scrollsVisibly = (el) => {
  const s = getComputedStyle(el);
  if (!['auto', 'scroll'].includes(s.overflowX) || s.scrollbarWidth === 'none') return false;
  const bar = el.offsetHeight - el.clientHeight - parseFloat(s.borderTopWidth) - parseFloat(s.borderBottomWidth);
  const thumb = (s.scrollbarColor.match(/^(rgba?\\([^)]*\\)|#[0-9a-f]+|[a-z]+)/i) || ['auto'])[0];
  const clear = thumb === 'transparent' || /rgba\\([^)]*,\\s*0\\)$/.test(thumb) || /^#[0-9a-f]{3}0$|^#[0-9a-f]{6}00$/i.test(thumb);
  return bar > 0 && !clear;
};
const scroller = (el) => {
  for (let up = el.parentElement; up && up !== content; up = up.parentElement) {
    if (up.scrollWidth > up.clientWidth + 1 && ['auto', 'scroll'].includes(getComputedStyle(up).overflowX)) return up;
  }
  return null;
};
const name = (el) => {
  const text = (el.textContent || '').trim().replace(/\\s+/g, ' ');
  return `<${el.tagName.toLowerCase()}> "${text.slice(0, 70)}${text.length > 70 ? '…' : ''}"`;
};
const textRight = (el) => {  // where the text ends, without the span's padding
  const range = document.createRange();
  range.selectNodeContents(el);
  return Math.max(...Array.from(range.getClientRects(), (r) => r.right), -Infinity);
};
content.querySelectorAll('pre, code').forEach((el, index) => {
  if (el.tagName === 'PRE' && el.querySelector(':scope > code')) return;  // its <code> is the box
  const r = el.getBoundingClientRect();
  if (!r.width || !r.height) return;  // not rendered (a closed tab, a hidden panel)
  el.setAttribute('data-layout-check', String(index));
  const block = el.tagName === 'PRE' || el.parentElement.tagName === 'PRE';
  if (block && el.scrollWidth > el.clientWidth + 1) {
    // Scrolling shows the rest of a line only if the scrollbar is on screen with the lines it cuts.
    if (!scrollsVisibly(el) || r.height > screenHeight) {
      found.push({index, what: name(el), why: `lines ${el.scrollWidth}px wide in a ${el.clientWidth}px box ${r.height > screenHeight ? `${Math.round(r.height)}px tall, its scrollbar off screen` : 'that does not scroll visibly'}`});
    }
    return;
  }
  const right = textRight(el);
  if (right > limit + 1) {
    const box = scroller(el);
    if (!box || !scrollsVisibly(box)) {
      found.push({index, what: name(el), why: `text reaches ${Math.round(right)}px, past the column's edge at ${Math.round(limit)}px`});
    }
  }
});
return found;
"""


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve(site: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def chromium(profile: str) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--window-size={WIDTHS[0]},{HEIGHT}")
    options.add_argument(f"--user-data-dir={profile}")
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    service = Service(shutil.which("chromedriver") or "/usr/bin/chromedriver")
    return webdriver.Chrome(service=service, options=options)


def check_page(driver: Any, url: str, page: str, width: int, out: Path) -> list[str]:
    from selenium.webdriver.common.by import By

    driver.set_window_size(width, HEIGHT)
    driver.get(f"{url}/{page}")
    driver.execute_script("return document.fonts ? document.fonts.ready : null")
    found = driver.execute_script(FIND_CLIPPED_CODE)
    stem = f"{page.removesuffix('.html').replace('/', '_')}-{width}"
    if page in KEY_PAGES or found:
        driver.save_screenshot(str(out / f"{stem}.png"))
    problems = []
    for item in found:
        element = driver.find_element(By.CSS_SELECTOR, f'[data-layout-check="{item["index"]}"]')
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
        shot = out / f"{stem}-clipped-{item['index']}.png"
        driver.save_screenshot(str(shot))
        problems.append(f"{page} at {width}px: {item['what']}: {item['why']} ({shot.name})")
    return problems


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--site", type=Path, default=Path("site"))
    parser.add_argument("--out", type=Path, help="screenshots (default: a new temp dir)")
    parser.add_argument("--page", action="append", help="only these pages (paths under the site)")
    args = parser.parse_args(argv)
    if not shutil.which("chromium") or not shutil.which("chromedriver"):
        print("docs layout: chromium and chromedriver are needed (apt-get install chromium chromium-driver)")
        return 2
    site = args.site.resolve()
    pages = args.page or sorted(
        path.relative_to(site).as_posix()
        for path in site.rglob("*.html")
        if path.name != "404.html" and "search" not in path.parts
    )
    pages.sort(key=lambda page: (page not in KEY_PAGES, page))
    out = (args.out or Path(tempfile.mkdtemp(prefix="docs-layout-"))).resolve()
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    server, url = serve(site)
    profile = tempfile.mkdtemp(prefix="docs-layout-profile-")
    driver = chromium(profile)
    problems: list[str] = []
    try:
        for width in WIDTHS:
            for page in pages:
                problems += check_page(driver, url, page, width, out)
    finally:
        driver.quit()
        server.shutdown()
        shutil.rmtree(profile, ignore_errors=True)
    summary = {"pages": len(pages), "widths": list(WIDTHS), "seconds": round(time.monotonic() - started, 1)}
    print(f"docs layout: {json.dumps(summary)}; screenshots in {out}")
    if problems:
        print(f"docs layout: {len(problems)} code element(s) cut off:\n  " + "\n  ".join(problems))
        return 1
    print("docs layout: no code block or code span is cut off")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
