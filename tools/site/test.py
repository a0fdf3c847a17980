#!/usr/bin/env python3
"""The website's self-test: `make test-site` (CI runs it after `make test`).

    /usr/bin/python3 -m tools.site.test             builds the site, then tests build/site
    /usr/bin/python3 -m tools.site.test --site DIR  tests a site already built in DIR

1. The files: every internal link, image, stylesheet and script of every page resolves to a
   file of the site (an #anchor to an id of its page), nothing is loaded from the network,
   every SVG has a width and a height, and search/search_index.json finds TCP_DEFER_ACCEPT
   in lesson 15.
2. The server: the site served on a loopback port (port 0: the kernel picks a free one)
   answers 200 for every one of those targets.
3. The browser: headless Chromium, driven through the DevTools protocol on a pipe
   (--remote-debugging-pipe: no port, no websocket), opens every page and reports each
   console message of level error, uncaught exception and failed load; every page shows its
   heading and text, a lesson's hints are all there and folded, and each <img> has loaded
   and has a non-zero size on screen. Search is typed the way a reader
   would (page.html?q=TCP_DEFER_ACCEPT) and must list lesson 15. Three screenshots go to
   build/site-shots/: a lesson page, a ladder diagram and a plot.

Chromium runs in its own process group with a user-data-dir in a temporary directory, and
every wait has a deadline; the group is killed at the end, whatever happened.
"""
import argparse
import base64
import fcntl
import functools
import html.parser
import http.server
import json
import os
import pathlib
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

from checker.harness.timeouts import T
from checker.harness.waiting import Deadline, wait_until
from tools.hint import parse_hints
from tools.site import build

ROOT = build.ROOT
SHOTS = ROOT / "build" / "site-shots"
LESSON_15 = "lessons/15-handshake-tuning/index.html"
WORD = "TCP_DEFER_ACCEPT"


# ---- 1. the files --------------------------------------------------------------------------

class Page(html.parser.HTMLParser):
    """The ids of an HTML page and the targets it refers to: (tag, attribute value)."""
    def __init__(self):
        super().__init__()
        self.ids, self.refs = set(), []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "a" and a.get("name"):
            self.ids.add(a["name"])
        for attr in ("href", "src"):
            if a.get(attr) and tag in ("a", "img", "link", "script", "source", "iframe"):
                self.refs.append((tag, a[attr]))


def parse(path: pathlib.Path) -> Page:
    p = Page()
    p.feed(path.read_text(errors="replace"))
    return p


def svg_size(path: pathlib.Path):
    """An SVG's drawn size: its width and height, or else its viewBox's (gnuplot gives only
    a viewBox, and the browser scales it to the page's width)."""
    root = ET.parse(path).getroot()
    num = lambda v: float("".join(c for c in (v or "0") if c.isdigit() or c == ".") or 0)
    if root.get("width") or root.get("height"):
        return num(root.get("width")), num(root.get("height"))
    box = (root.get("viewBox") or "0 0 0 0").split()
    return (float(box[2]), float(box[3])) if len(box) == 4 else (0, 0)


def check_files(site: pathlib.Path, problems: list) -> list:
    """Static checks of every page; returns the site-relative paths of every internal target."""
    pages = sorted(p for p in site.rglob("*.html") if p.name != "404.html")
    parsed = {}
    targets = set()
    for page in pages:
        parsed.setdefault(page, parse(page))
        for tag, ref in parsed[page].refs:
            url = urllib.parse.urlsplit(ref)
            where = f"{page.relative_to(site)}: <{tag}> {ref}"
            if url.scheme or url.netloc:
                if tag != "a":    # a link the reader may follow is fine; a load is not
                    problems.append(f"{where}: loaded from the network (the site must work offline)")
                continue
            if not url.path:       # "#anchor" on the same page ("#" alone: the top)
                target = page.resolve()
            else:
                target = (page.parent / urllib.parse.unquote(url.path)).resolve()
                if target.is_dir():
                    target = target / "index.html"
            if not target.is_file() or site.resolve() not in target.parents:
                problems.append(f"{where}: no such file in the site")
                continue
            targets.add(str(target.relative_to(site.resolve())))
            if url.fragment and target.suffix == ".html":
                ids = parsed.setdefault(target, parse(target)).ids
                if urllib.parse.unquote(url.fragment) not in ids:
                    problems.append(f"{where}: no id {url.fragment!r} in {target.name}")
            if tag == "img" and target.suffix == ".svg":
                w, h = svg_size(target)
                if not (w > 0 and h > 0):
                    problems.append(f"{where}: the SVG has no size ({w} x {h})")
    if not pages:
        problems.append(f"no page in {site}")
    return sorted(targets)


def check_search_index(site: pathlib.Path, problems: list):
    index = json.loads((site / "search" / "search_index.json").read_text())
    found = [d["location"] for d in index["docs"]
             if d["location"].startswith(LESSON_15.rsplit("/", 1)[0]) and WORD in d["text"]]
    if not found:
        problems.append(f"search/search_index.json: no entry of lesson 15 holds {WORD}")
    return found


# ---- 2. the server -------------------------------------------------------------------------

class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):   # the browser may hang up early
            super().handle_error(request, client_address)


def serve(site: pathlib.Path):
    server = Server(("127.0.0.1", 0),
                                             functools.partial(QuietHandler, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def check_http(base: str, targets: list, problems: list):
    for t in targets:
        try:
            with urllib.request.urlopen(base + urllib.parse.quote(t), timeout=T(10)) as r:
                status = r.status
        except OSError as e:
            status = e
        if status != 200:
            problems.append(f"GET /{t}: {status}")


# ---- 3. the browser ------------------------------------------------------------------------

class Chromium:
    """Headless Chromium driven with the DevTools protocol over --remote-debugging-pipe:
    JSON messages ending in a NUL byte, commands on its fd 3, answers and events on fd 4."""

    def __init__(self, tmp: str):
        to_r, self.to_w = os.pipe()
        self.from_r, from_w = os.pipe()
        argv = ["chromium", "--headless", "--remote-debugging-pipe",
                f"--user-data-dir={tmp}/profile",
                # the kernel sandbox needs user namespaces that root in a container lacks;
                # Chromium refuses to run as root without this. It only ever opens our pages.
                *(["--no-sandbox"] if os.geteuid() == 0 else []),
                "--disable-gpu", "--no-first-run", "--no-default-browser-check",
                "--disable-extensions", "--disable-background-networking", "--disable-sync",
                "--disable-component-update", "--disable-dev-shm-usage", "--mute-audio",
                "--hide-scrollbars", "--window-size=1280,900", "about:blank"]

        def fds_3_and_4():   # (by way of fds above 10, in case one of the two is 3 or 4)
            high_r, high_w = fcntl.fcntl(to_r, fcntl.F_DUPFD, 10), fcntl.fcntl(from_w, fcntl.F_DUPFD, 10)
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open(f"{tmp}/chromium.log", "wb"),
                                     start_new_session=True, pass_fds=(3, 4),
                                     preexec_fn=fds_3_and_4)
        os.close(to_r)
        os.close(from_w)
        self.next_id, self.buffer, self.events = 0, b"", []
        self.session = None

    def close(self):
        """Asks Chromium to quit, then kills its process group: whatever it left, and all of
        it if it did not answer."""
        try:
            self.session = None
            self.send("Browser.close", timeout=5, session=False)
            self.proc.wait(timeout=T(10))
        except (OSError, TimeoutError, RuntimeError, subprocess.TimeoutExpired):
            pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=T(10))
        os.close(self.to_w)
        os.close(self.from_r)

    def _read(self, deadline: Deadline):
        """One message, or None at the deadline."""
        while b"\0" not in self.buffer:
            left = deadline.left()
            if left <= 0 or not select.select([self.from_r], [], [], left)[0]:
                return None
            chunk = os.read(self.from_r, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed its DevTools pipe (see its log)")
            self.buffer += chunk
        msg, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(msg)

    def send(self, method: str, params=None, timeout=30, session=True):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self.to_w, json.dumps(msg).encode() + b"\0")
        deadline = Deadline(T(timeout))
        while True:
            reply = self._read(deadline)
            if reply is None:
                raise TimeoutError(f"chromium did not answer {method} in {timeout} s")
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)

    def wait_event(self, method: str, timeout=30):
        deadline = Deadline(T(timeout))
        while True:
            for n, e in enumerate(self.events):
                if e["method"] == method:
                    return self.events.pop(n)
            e = self._read(deadline)
            if e is None:
                raise TimeoutError(f"no {method} in {timeout} s")
            if "method" in e:
                self.events.append(e)

    def open_tab(self):
        target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True},
                                 session=False)["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable")
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False})

    def load(self, url: str) -> list:
        """Opens url, waits for its load event; returns the errors it reported meanwhile."""
        self.events.clear()
        self.send("Page.navigate", {"url": url})
        self.wait_event("Page.loadEventFired")
        # one more round trip, so that the messages of the page's last scripts are in
        self.evaluate("document.readyState")
        return self.errors()

    def errors(self) -> list:
        out = []
        for e in self.events:
            p = e.get("params", {})
            if e["method"] == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append("console.error: " + " ".join(str(a.get("value", a.get("description", "")))
                                                        for a in p.get("args", [])))
            elif e["method"] == "Runtime.exceptionThrown":
                d = p.get("exceptionDetails", {})
                out.append("exception: " + d.get("exception", {}).get("description", d.get("text", "")))
            elif e["method"] == "Log.entryAdded" and p["entry"]["level"] == "error":
                out.append(f"{p['entry']['source']}: {p['entry']['text']} {p['entry'].get('url', '')}")
        self.events = [e for e in self.events if e["method"] == "Page.loadEventFired"]
        return out

    def evaluate(self, expression: str):
        r = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expression[:60]}...: {r['exceptionDetails']}")
        return r["result"].get("value")

    def screenshot(self, selector: str, path: pathlib.Path):
        """A PNG of the 1280 x 900 window, scrolled to show the element `selector`."""
        found = self.evaluate(f"""(() => {{ const e = document.querySelector({json.dumps(selector)});
            if (!e) return false;
            const still = document.createElement('style');   // no half-done header animation
            still.textContent = '* {{ transition: none !important; animation: none !important }}';
            document.head.append(still);
            scrollTo(0, Math.max(0, e.getBoundingClientRect().top + scrollY - 200)); return true; }})()""")
        if not found:
            raise RuntimeError(f"no {selector} to take a picture of")
        # the scroll is applied in the next frame: ask for one before the picture
        self.send("Runtime.evaluate", {"expression": "new Promise(r => requestAnimationFrame(r))",
                                       "awaitPromise": True})
        shot = self.send("Page.captureScreenshot", {"format": "png"})
        path.write_bytes(base64.b64decode(shot["data"]))


PAGE = """({h1: document.querySelector('article h1') !== null,
    text: (document.querySelector('article') || {innerText: ''}).innerText.length,
    hints: document.querySelectorAll('article details.tip').length,
    open: document.querySelectorAll('article details.tip[open]').length})"""

IMAGES = """[...document.images].map(i => { const r = i.getBoundingClientRect();
    return {src: i.getAttribute('src'), ok: i.complete && i.naturalWidth > 0,
            w: r.width, h: r.height, hidden: i.closest('details:not([open])') !== null}; })"""


def hints_of(lesson: str) -> list:
    path = ROOT / "lessons" / lesson / "HINTS.md"
    return parse_hints(path.read_text()) if path.exists() else []


def check_browser(base: str, site: pathlib.Path, shots: pathlib.Path, problems: list):
    pages = sorted(str(p.relative_to(site)) for p in site.rglob("*.html") if p.name != "404.html")
    with tempfile.TemporaryDirectory(prefix="netcourse-site-") as tmp:
        chrome = Chromium(tmp)
        try:
            chrome.open_tab()
            images = 0
            for page in pages:
                for error in chrome.load(base + page):
                    problems.append(f"{page}: {error}")
                shown = chrome.evaluate(PAGE)
                if not shown["h1"] or shown["text"] < 100:
                    problems.append(f"{page}: no heading or almost no text on screen ({shown})")
                lesson = page.split("/")[1] if page.startswith("lessons/") else None
                if lesson and (shown["hints"] != len(hints_of(lesson)) or shown["open"]):
                    problems.append(f"{page}: {shown['hints']} folded hints ({shown['open']} open), "
                                    f"HINTS.md has {len(hints_of(lesson))}")
                for img in chrome.evaluate(IMAGES):
                    images += 1
                    if not img["ok"]:
                        problems.append(f"{page}: the image {img['src']} did not load")
                    elif not img["hidden"] and not (img["w"] > 0 and img["h"] > 0):
                        problems.append(f"{page}: the image {img['src']} shows {img['w']} x {img['h']}")
            print(f"[test-site] chromium: {len(pages)} pages, {images} images")

            # Search as a reader does it: the query in the search box (?q= fills it in).
            chrome.load(base + f"index.html?q={WORD}")
            def search_hits():   # empty while the search worker is still indexing
                return chrome.evaluate("[...document.querySelectorAll('.md-search-result__item a')]"
                                       ".map(a => a.getAttribute('href'))") or []

            def lesson_15_found():
                hits = search_hits()
                return hits if any("15-handshake-tuning" in h for h in hits) else None
            hits = wait_until(lesson_15_found, T(20), "a lesson 15 page among the results", 0.1) or search_hits()
            if not any("15-handshake-tuning" in h for h in hits):
                problems.append(f"the search box finds no lesson 15 page for {WORD} (found: {hits[:5]})")
            else:
                print(f"[test-site] the search box: {WORD} -> {len(hits)} results, lesson 15 among them")

            shots.mkdir(parents=True, exist_ok=True)
            for name, page, selector in [
                    ("lesson.png", LESSON_15, "body"),
                    ("ladder.png", LESSON_15, "img[src$='15-all-tuned.svg']"),
                    ("plot.png", "docs/plots.html", "img[src$='select-vs-epoll.svg']")]:
                chrome.load(base + page)
                chrome.screenshot(selector, shots / name)
            print(f"[test-site] screenshots: {shots.relative_to(ROOT) if ROOT in shots.parents else shots}/"
                  "lesson.png, ladder.png, plot.png")
        except (TimeoutError, RuntimeError) as e:
            problems.append(f"chromium: {e}")
            log = pathlib.Path(tmp, "chromium.log").read_text(errors="replace").strip().splitlines()
            problems += ["  " + line for line in log[-10:]]
        finally:
            chrome.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--site", type=pathlib.Path, help="test this built site instead of building one")
    ap.add_argument("--shots", type=pathlib.Path, default=SHOTS)
    args = ap.parse_args()
    started = time.monotonic()
    site = args.site
    if site is None:
        try:
            build.build()
        except build.SiteError as e:
            print(f"[site] {e}", file=sys.stderr)
            return 1
        site = build.SITE
    problems = []
    targets = check_files(site, problems)
    found = check_search_index(site, problems)
    print(f"[test-site] files: {len(targets)} internal targets; the search index has {WORD} "
          f"in {len(found)} place(s) of lesson 15")
    server = serve(site)
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/"
        check_http(base, targets, problems)
        check_browser(base, site, args.shots, problems)
    finally:
        server.shutdown()
        server.server_close()
    for p in problems:
        print(f"[test-site] FAIL {p}", file=sys.stderr)
    print(f"[test-site] {'FAILED: ' + str(len(problems)) + ' problem(s)' if problems else 'passed'} "
          f"in {time.monotonic() - started:.0f} s")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
