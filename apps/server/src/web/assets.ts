import { createHash } from "node:crypto";

/**
 * The stylesheet and the little script of the pages, served by Sluice
 * itself under `/_static/` (no CDN). They are strings here, not files, so
 * the bundled `sluice.mjs` (scripts/build.ts) carries them. Plain JS rather
 * than htmx: the pages are forms that work without a script, and the script
 * only adds conveniences (copy a DSN, select all rows, refresh relative
 * times), which do not justify a dependency served to every browser.
 */

const STYLESHEET = `
:root {
  --bg: #f7f7f9; --panel: #fff; --text: #1d1c22; --muted: #5f5b6b; --border: #dedce4;
  --accent: #5b3fd1; --accent-text: #fff; --danger: #c4213a; --warning: #a65a00;
  --info: #2563b5; --ok: #1f7a43; --in-app: #f3f0ff; --code-bg: #f4f3f7;
  color-scheme: light;
}
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--text); background: var(--bg); }
a { color: var(--accent); }
a:focus-visible, button:focus-visible, input:focus-visible, select:focus-visible, summary:focus-visible {
  outline: 3px solid #9d86ff; outline-offset: 2px; }
.skip { position: absolute; left: -9999px; }
.skip:focus { left: 1rem; top: .5rem; background: #fff; padding: .3rem .6rem; z-index: 10; }
header.top { display: flex; align-items: center; gap: 1.2rem; padding: .55rem 1.2rem;
  background: #231c3d; color: #fff; flex-wrap: wrap; }
header.top a { color: #fff; text-decoration: none; }
header.top a:hover { text-decoration: underline; }
header.top .brand { font-weight: 700; font-size: 1.1rem; letter-spacing: .02em; }
header.top nav ul { display: flex; gap: 1rem; list-style: none; margin: 0; padding: 0; }
header.top nav a[aria-current="page"] { text-decoration: underline; text-underline-offset: 4px; }
header.top .who { margin-left: auto; display: flex; gap: .8rem; align-items: center; }
header.top .who button { background: transparent; color: #fff; border: 1px solid #8b82aa; }
main { max-width: 1200px; margin: 0 auto; padding: 1.2rem; }
h1 { font-size: 1.45rem; margin: .2rem 0 .8rem; overflow-wrap: anywhere; }
h2 { font-size: 1.15rem; margin: 1.4rem 0 .6rem; }
h3 { font-size: 1rem; margin: 1rem 0 .4rem; }
.panel { background: var(--panel); border: 1px solid var(--border); border-radius: 6px; padding: 1rem; margin-bottom: 1rem; }
.muted { color: var(--muted); }
.notice { border-left: 4px solid var(--info); background: #eef4fc; padding: .5rem .8rem; margin: .6rem 0; border-radius: 3px; }
.notice.error { border-color: var(--danger); background: #fdeef0; }
.empty { text-align: center; padding: 2rem 1rem; }
button, .button { font: inherit; padding: .35rem .8rem; border-radius: 5px; border: 1px solid var(--border);
  background: #fff; color: var(--text); cursor: pointer; text-decoration: none; display: inline-block; }
button.primary, .button.primary { background: var(--accent); color: var(--accent-text); border-color: var(--accent); }
button:hover { filter: brightness(.96); }
input[type=text], input[type=search], input[type=email], input[type=password], input[type=number], select, textarea {
  font: inherit; padding: .35rem .5rem; border: 1px solid #bdb9c9; border-radius: 5px; background: #fff; }
textarea.rules { width: 100%; font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 13px; }
[aria-invalid=true] { border-color: var(--danger); }
.panel > h2:first-child { margin-top: 0; }
dl.facts.spaced { margin: .6rem 0 .8rem; }
label { font-weight: 600; }
form.inline { display: inline; }
.toolbar { display: flex; gap: .6rem; align-items: end; flex-wrap: wrap; margin-bottom: .8rem; }
.toolbar .field { display: flex; flex-direction: column; gap: .2rem; }
.toolbar .grow { flex: 1; min-width: 16rem; }
.toolbar .grow input { width: 100%; }
.actions { display: flex; gap: .5rem; flex-wrap: wrap; margin: .6rem 0; }
table { border-collapse: collapse; width: 100%; background: var(--panel); }
th, td { text-align: left; padding: .45rem .6rem; border-bottom: 1px solid var(--border); vertical-align: top; }
th { font-size: .8rem; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.issue-title { font-weight: 600; overflow-wrap: anywhere; }
.culprit { color: var(--muted); font-size: .88rem; overflow-wrap: anywhere; }
.level { display: inline-block; padding: 0 .45rem; border-radius: 3px; font-size: .78rem; font-weight: 600;
  color: #fff; background: var(--muted); text-transform: lowercase; }
.level-fatal { background: #7a0d1e; } .level-error { background: var(--danger); }
.level-warning { background: var(--warning); } .level-info { background: var(--info); }
.level-debug { background: #555; }
.status { font-weight: 600; } .status-resolved { color: var(--ok); } .status-ignored { color: var(--muted); }
.status-unresolved { color: var(--danger); }
svg.spark { display: block; }
svg.spark rect { fill: #8a74e8; }
.pager { display: flex; gap: .8rem; justify-content: flex-end; margin: .8rem 0; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; margin: 0; }
dl.facts dt { color: var(--muted); } dl.facts dd { margin: 0; overflow-wrap: anywhere; }
.summary-grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(9rem, 1fr)); gap: .6rem; }
.summary-grid > div { background: var(--panel); border: 1px solid var(--border); border-radius: 6px; padding: .5rem .7rem; }
.summary-grid .k { font-size: .78rem; color: var(--muted); text-transform: uppercase; }
.summary-grid .v { font-size: 1.05rem; font-weight: 600; }
.layout-2 { display: grid; grid-template-columns: minmax(0, 1fr) 18rem; gap: 1rem; }
@media (max-width: 900px) { .layout-2 { grid-template-columns: 1fr; } }
.exception h3 { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: .98rem; }
.exception .value { white-space: pre-wrap; overflow-wrap: anywhere; margin: .2rem 0 .6rem; }
ol.frames { list-style: none; margin: 0; padding: 0; border: 1px solid var(--border); border-radius: 6px; overflow: hidden; }
ol.frames > li { border-bottom: 1px solid var(--border); padding: .4rem .7rem; background: #fff; }
ol.frames > li:last-child { border-bottom: 0; }
ol.frames > li.in-app { background: var(--in-app); border-left: 4px solid var(--accent); }
ol.frames details.system summary { cursor: pointer; color: var(--muted); }
ol.frames details.system ol { list-style: none; padding: 0; margin: .3rem 0 0; }
ol.frames details.system li { padding: .3rem 0; border-top: 1px dashed var(--border); }
.frame-head { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: .88rem; overflow-wrap: anywhere; }
.frame-head .fn { font-weight: 700; }
.frame-head .tag { font-family: system-ui, sans-serif; font-size: .72rem; background: var(--accent); color: #fff; border-radius: 3px; padding: 0 .35rem; margin-left: .3rem; }
pre.context { margin: .4rem 0 .2rem; background: var(--code-bg); border-radius: 4px; padding: .3rem 0; overflow-x: auto;
  font: .82rem/1.5 ui-monospace, SFMono-Regular, Menlo, monospace; }
pre.context span { display: block; padding: 0 .6rem; white-space: pre; }
pre.context span.current { background: #e3dcff; font-weight: 600; }
pre.context span i { display: inline-block; width: 3.5em; color: var(--muted); font-style: normal; user-select: none; }
details.minified { font-size: .84rem; margin-top: .2rem; }
details.minified summary { cursor: pointer; color: var(--muted); }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: .88em; }
.nowrap { white-space: nowrap; } th .muted { font-weight: normal; }
.tags { display: flex; flex-wrap: wrap; gap: .35rem; list-style: none; padding: 0; margin: 0; }
.tags li { border: 1px solid var(--border); border-radius: 4px; background: #fff; font-size: .85rem; }
.tags li span { padding: .1rem .4rem; display: inline-block; }
.tags li .k { background: var(--code-bg); color: var(--muted); }
.tag-summary { margin-bottom: .8rem; }
.tag-summary h3 { margin: 0 0 .2rem; font-size: .9rem; }
.bar { height: 6px; background: var(--code-bg); border-radius: 3px; overflow: hidden; }
.bar > div { height: 6px; background: #8a74e8; }
.share { display: flex; justify-content: space-between; font-size: .85rem; gap: .5rem; }
.share span:first-child { overflow-wrap: anywhere; }
nav.events { display: flex; gap: .4rem; flex-wrap: wrap; align-items: center; }
nav.events .disabled { color: var(--muted); padding: .35rem .8rem; border: 1px dashed var(--border); border-radius: 5px; }
.dsn { display: flex; gap: .5rem; align-items: center; }
.dsn input { flex: 1; font-family: ui-monospace, monospace; }
pre.snippet { background: #231c3d; color: #f3f0ff; padding: .8rem; border-radius: 6px; overflow-x: auto; }
.login { max-width: 24rem; margin: 3rem auto; }
.login form { display: flex; flex-direction: column; gap: .6rem; }
.error-page { text-align: center; padding: 3rem 1rem; }
.error-page .code { font-size: 3rem; font-weight: 700; color: var(--muted); }
fieldset { border: 1px solid var(--border); border-radius: 6px; background: var(--panel); margin: 0 0 1rem; padding: .6rem 1rem; }
legend { font-weight: 700; padding: 0 .3rem; }
fieldset[aria-invalid="true"], input[aria-invalid="true"], select[aria-invalid="true"], textarea[aria-invalid="true"] { border-color: var(--danger); }
.rule-form .row { margin: .4rem 0; }
.rule-form .field label { font-weight: 500; font-size: .85rem; }
input[type=number], textarea { font: inherit; padding: .35rem .5rem; border: 1px solid #bdb9c9; border-radius: 5px; background: #fff; }
textarea { width: 100%; font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: .88rem; }
.field-error, ul.field-errors { color: var(--danger); }
ul.field-errors { margin: .3rem 0; padding-left: 1.2rem; }
button.danger { background: var(--danger); color: #fff; border-color: var(--danger); }
svg.usage-chart { display: block; max-height: 14rem; }
th[scope=row] { text-transform: none; font-size: inherit; letter-spacing: normal; color: var(--text); }
.legend .swatch { display: inline-block; width: .8rem; height: .8rem; border-radius: 2px; vertical-align: middle; }
.legend .swatch.accepted { background: #8a74e8; } .legend .swatch.dropped { background: #e0863a; margin-left: .8rem; }
label.check { display: inline-block; margin: .2rem 1rem .2rem 0; white-space: nowrap; font-weight: normal; }
form.panel .field { display: flex; flex-direction: column; gap: .2rem; margin: .6rem 0; max-width: 24rem; }
form.panel .field input { font: inherit; padding: .35rem .5rem; border: 1px solid #bdb9c9; border-radius: 5px; }
`;

const SCRIPT = `
(function () {
  "use strict";
  function ago(then) {
    var s = Math.round((Date.now() - then) / 1000);
    var future = s < 0; s = Math.abs(s);
    var units = [["year", 31536000], ["month", 2592000], ["day", 86400], ["hour", 3600], ["minute", 60]];
    var text = "just now";
    for (var i = 0; i < units.length; i++) {
      var n = Math.floor(s / units[i][1]);
      if (n >= 1) { text = n + " " + units[i][0] + (n === 1 ? "" : "s"); text = future ? "in " + text : text + " ago"; break; }
    }
    return text;
  }
  function refresh() {
    document.querySelectorAll("time[data-relative]").forEach(function (el) {
      var t = Date.parse(el.getAttribute("datetime"));
      if (!isNaN(t)) el.textContent = ago(t);
    });
  }
  setInterval(refresh, 60000);
  document.addEventListener("click", function (e) {
    var target = e.target;
    if (!(target instanceof Element)) return;
    var copy = target.closest("[data-copy]");
    if (copy) {
      var input = document.getElementById(copy.getAttribute("data-copy"));
      if (input && navigator.clipboard) {
        navigator.clipboard.writeText(input.value).then(function () { copy.textContent = "Copied"; });
      } else if (input) { input.select(); }
    }
  });
  document.addEventListener("change", function (e) {
    var target = e.target;
    if (target instanceof HTMLInputElement && target.hasAttribute("data-select-all")) {
      var form = target.form;
      if (!form) return;
      form.querySelectorAll("input[type=checkbox][name=issue]").forEach(function (box) { box.checked = target.checked; });
    }
    if (target instanceof HTMLSelectElement && target.hasAttribute("data-autosubmit") && target.form) {
      target.form.requestSubmit();
    }
  });
})();
`;

type Asset = { body: string; type: string; etag: string };

const asset = (body: string, type: string): Asset => ({
  body,
  type,
  etag: `"${createHash("sha256").update(body).digest("hex").slice(0, 16)}"`,
});

/** The static files by name: what `/_static/{name}` serves. */
export const ASSETS: Record<string, Asset> = {
  "sluice.css": asset(STYLESHEET, "text/css; charset=utf-8"),
  "sluice.js": asset(SCRIPT, "text/javascript; charset=utf-8"),
};

/** The URL of an asset, with its hash so a new release is fetched again. */
export function assetUrl(name: "sluice.css" | "sluice.js"): string {
  return `/_static/${name}?v=${(ASSETS[name] as Asset).etag.slice(1, 9)}`;
}
