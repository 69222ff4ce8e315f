"""HTML shells of the viewer and review pages. All content is drawn by the page's script
from JSON embedded with :func:`~diffcap.web.safety.json_for_script` (never as HTML).

    html = page("viewer", "diffcap viewer", {"mode": "server"})              # served
    html = page("viewer", "report", {"mode": "static", ...}, inline=True)    # the report
"""

from __future__ import annotations

import base64
import hashlib
from html import escape
from importlib import resources
from typing import Any

from diffcap.web.safety import json_for_script

_BODIES = {
    "viewer": """
<header>
  <h1>diffcap</h1>
  <input id="q" type="search" placeholder="Search video id or caption text" autocomplete="off">
  <select id="f-status" data-facet="statuses" data-label="statuses" title="status"></select>
  <select id="f-mode" data-facet="modes" data-label="modes" title="mode"></select>
  <select id="f-model" data-facet="models" data-label="models" title="model"></select>
  <select id="f-run" data-facet="runs" data-label="runs" title="run"></select>
  <span id="count"></span>
  <span id="pager">
    <button id="prev" type="button" title="previous page">‹</button>
    <span id="page-info"></span>
    <button id="next" type="button" title="next page">›</button>
  </span>
</header>
<main>
  <nav id="list" aria-label="videos"></nav>
  <section id="detail"><p class="empty">Select a video.</p></section>
</main>""",
    "review": """
<header>
  <h1>Blind review</h1>
  <span id="reviewer"></span>
  <span id="progress"></span>
</header>
<main id="item"><p class="empty">Loading…</p></main>
<footer>Keys: <kbd>1</kbd>/<kbd>←</kbd> left is better · <kbd>2</kbd>/<kbd>→</kbd> right is
better · <kbd>3</kbd>/<kbd>↓</kbd> tie</footer>""",
}


def read_static(name: str) -> str:
    """A packaged asset's text (``static/viewer.js``...)."""
    return (resources.files("diffcap.web") / "static" / name).read_text(encoding="utf-8")


def page(kind: str, title: str, config: dict[str, Any], inline: bool = False) -> str:
    """The HTML of one page. ``inline`` embeds CSS and JS (for the static report) and pins
    the script by hash in a Content-Security-Policy, so only that script (and the data
    files it loads) can run."""
    data = json_for_script(config)
    if inline:
        css = read_static(f"{kind}.css")
        js = read_static(f"{kind}.js")
        digest = base64.b64encode(hashlib.sha256(js.encode()).digest()).decode()
        # 'strict-dynamic': the pinned script may load the report's data files (scripts it
        # creates itself); nothing parsed from markup can run.
        csp = (
            f"default-src 'none'; script-src 'sha256-{digest}' 'strict-dynamic'; "
            "style-src 'unsafe-inline'; img-src 'self' file: data:; media-src 'self' file:; "
            "object-src 'none'; base-uri 'none'"
        )
        head = f'<meta http-equiv="Content-Security-Policy" content="{csp}">\n<style>{css}</style>'
        script = f"<script>{js}</script>"
    else:
        head = f'<link rel="stylesheet" href="/static/{kind}.css">'
        script = f'<script src="/static/{kind}.js"></script>'
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{escape(title)}</title>
{head}
</head>
<body class="{kind}">
{_BODIES[kind]}
<script id="diffcap-data" type="application/json">{data}</script>
{script}
</body>
</html>
"""
