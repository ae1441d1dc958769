"""Real-world-shaped pages the fetch tests and the benchmark serve from loopback.

A news-style article page carries what a real one does around its text: a navigation bar, a cookie
banner, ad slots, inline and external scripts, styles, a sidebar of related links, a comment section
and a footer. The article itself has headings, paragraphs with links and emphasis, a table, a code
block, a list, a quotation and an image. ``article_page(size)`` repeats the article's sections until
the page reaches ``size`` bytes, for the huge-page test and the benchmark.
"""

from __future__ import annotations

ARTICLE_TITLE = "Tuning PostgreSQL autovacuum for write-heavy tables"

# Strings that sit only in the page's boilerplate: none may reach the converted markdown.
BOILERPLATE_MARKERS = (
    "Subscribe to our newsletter",
    "We use cookies",
    "ADVERTISEMENT",
    "Sponsored: Buy cheap servers",
    "window.dataLayer",
    "font-family: Helvetica",
    "Trending now",
    "Home | World | Tech",
    "Copyright 2026 Example Media",
    "First comment!",
    "trackPageView",
)

# Strings from the article body: all must reach the markdown.
CONTENT_MARKERS = (
    "Autovacuum keeps dead tuples in check",
    "autovacuum_vacuum_scale_factor",
    "pg_stat_user_tables",
    "Measure before you tune",
)

_HEAD = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title} | Example Tech</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta property="og:title" content="{title}">
<link rel="stylesheet" href="/static/site.css">
<style>body {{ font-family: Helvetica, sans-serif; }} .ad-slot {{ min-height: 250px; }}</style>
<script>window.dataLayer = window.dataLayer || []; function gtag(){{dataLayer.push(arguments);}}</script>
<script type="application/ld+json">{{"@context": "https://schema.org", "@type": "NewsArticle"}}</script>
<script async src="https://ads.example.net/tag.js"></script>
</head>
<body class="article-page">
<a class="skip-link" href="#main">Skip to content</a>
<div id="cookie-banner" class="cookie-consent" role="dialog">
  <p>We use cookies to improve your experience. <button>Accept all</button></p>
</div>
<header class="site-header">
  <div class="logo"><a href="/"><img src="/logo.png" alt="Example Tech"></a></div>
  <nav class="main-nav" aria-label="Main">
    <ul><li><a href="/">Home</a></li> | <li><a href="/world">World</a></li> |
    <li><a href="/tech">Tech</a></li></ul>
    <span class="crumbs">Home | World | Tech</span>
  </nav>
</header>
<div class="ad-slot leaderboard"><span>ADVERTISEMENT</span><iframe src="https://ads.example.net/x"></iframe></div>
<div class="layout">
<main id="main">
<article class="post">
<header class="post-header">
  <h1>{title}</h1>
  <p class="byline">By <a href="/authors/ada">Ada Lovelace</a> · 26 November 2026</p>
</header>
<div class="post-body">
"""

_SECTION = """<h2>Measure before you tune{suffix}</h2>
<p>Autovacuum keeps dead tuples in check, but its defaults were chosen for small tables.
On a table that takes <strong>thousands of updates a second</strong>, the default
<code>autovacuum_vacuum_scale_factor</code> of 0.2 lets a fifth of the table rot before a run starts.
Read the <a href="/docs/routine-vacuuming">routine vacuuming guide</a> and
<a href="https://www.postgresql.org/docs/current/runtime-config-autovacuum.html">the settings reference</a>
before changing anything; <em>measure</em> first.</p>
<div class="ad-slot inline-ad"><p>Sponsored: Buy cheap servers today!</p></div>
<p>Start with the statistics view <code>pg_stat_user_tables</code>, which counts live and dead tuples
per table and records when each was last vacuumed.</p>
<pre><code class="language-sql">SELECT relname, n_live_tup, n_dead_tup, last_autovacuum
FROM pg_stat_user_tables
WHERE n_dead_tup &gt; 1000
ORDER BY n_dead_tup DESC;</code></pre>
<table class="settings">
  <caption>Settings we changed</caption>
  <thead><tr><th>Setting</th><th>Default</th><th>Ours</th></tr></thead>
  <tbody>
    <tr><td>autovacuum_vacuum_scale_factor</td><td>0.2</td><td>0.01</td></tr>
    <tr><td>autovacuum_vacuum_cost_limit</td><td>200</td><td>2000</td></tr>
    <tr><td>autovacuum_naptime</td><td>1min</td><td>15s</td></tr>
  </tbody>
</table>
<p>The changes, in the order we made them:</p>
<ol>
  <li>Lower the scale factor on the hot tables only.</li>
  <li>Raise the cost limit so a run finishes.</li>
  <li>Watch <code>n_dead_tup</code> for a week.</li>
</ol>
<blockquote><p>Vacuum early, vacuum often.</p></blockquote>
<figure><img src="/img/dead-tuples.png" alt="Dead tuples over a week">
<figcaption>Dead tuples fell by 90%.</figcaption></figure>
"""

_TAIL = """</div>
</article>
<section class="comments" id="comments">
  <h3>Comments</h3>
  <div class="comment"><p>First comment!</p></div>
</section>
</main>
<aside class="sidebar">
  <h3>Trending now</h3>
  <ul><li><a href="/a">Ten tricks</a></li><li><a href="/b">You will not believe</a></li></ul>
  <div class="newsletter"><p>Subscribe to our newsletter</p><form><input type="email"></form></div>
</aside>
</div>
<footer class="site-footer"><p>Copyright 2026 Example Media. <a href="/privacy">Privacy</a></p></footer>
<script>trackPageView("/article");</script>
<noscript><img src="https://ads.example.net/pixel.gif" alt=""></noscript>
</body>
</html>
"""


def article_page(size: int = 0, title: str = ARTICLE_TITLE) -> str:
    """The article page; with ``size``, its sections repeat (numbered) until the page is that many bytes."""
    head = _HEAD.format(title=title)
    sections = [_SECTION.format(suffix="")]
    total = len(head) + len(_TAIL) + len(sections[0])
    number = 2
    while total < size:
        section = _SECTION.format(suffix=f" (part {number})")
        sections.append(section)
        total += len(section)
        number += 1
    return head + "".join(sections) + _TAIL


def cyrillic_page() -> str:
    """A Russian page, to be served as windows-1251 with the charset named only in a meta tag."""
    return (
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=windows-1251">'
        "<title>Новости</title></head><body><nav>Главная | Меню</nav><main><article>"
        "<h1>Привет, мир</h1><p>Съешь же ещё этих мягких французских булок, да выпей чаю.</p>"
        "</article></main></body></html>"
    )


def japanese_page() -> str:
    """A Japanese page, to be served as Shift_JIS with the charset named in the Content-Type header."""
    return (
        "<html><head><title>天気予報</title></head><body><main>"
        "<h1>今日の天気</h1><p>東京は晴れ、最高気温は二十度です。</p>"
        "</main></body></html>"
    )
