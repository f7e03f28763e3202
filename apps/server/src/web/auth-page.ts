import { html, raw } from "hono/html";
import type { HtmlEscapedString } from "hono/utils/html";

/**
 * The frame of the sign-in pages (sign in, set a password, accept an
 * invitation): a heading, an optional error (role="alert"), the content.
 */
export function authPage(
  title: string,
  content: HtmlEscapedString | Promise<HtmlEscapedString>,
  error: string | null = null,
) {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · Sluice</title>
<style>${raw(STYLE)}</style>
</head>
<body>
<main class="auth">
<h1>${title}</h1>
${error ? html`<p role="alert" class="error">${error}</p>` : ""}
${content}
</main>
</body>
</html>`;
}

const STYLE = `
body{font:16px/1.5 system-ui,sans-serif;margin:0;background:#f6f6f8;color:#1d1d1f}
.auth{max-width:24rem;margin:10vh auto;background:#fff;padding:2rem;border-radius:8px;box-shadow:0 1px 3px #0002}
h1{font-size:1.4rem;margin-top:0}
label{display:block;margin:.8rem 0 .2rem;font-weight:600}
input{width:100%;box-sizing:border-box;padding:.5rem;font:inherit;border:1px solid #999;border-radius:4px}
button,.button{display:inline-block;margin-top:1rem;padding:.5rem 1rem;font:inherit;border:0;border-radius:4px;background:#3d3bb8;color:#fff;cursor:pointer;text-decoration:none}
button:focus,input:focus,.button:focus{outline:3px solid #f5a623;outline-offset:1px}
.error{background:#fde8e8;color:#8a1c1c;padding:.5rem;border-radius:4px}
.secondary{background:#fff;color:#3d3bb8;border:1px solid #3d3bb8}
.hint{margin:.2rem 0 0;font-size:.9rem;color:#555}
`;
