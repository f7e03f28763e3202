import type { Context } from "hono";
import { Layout } from "./layout.tsx";
import { render } from "./render.ts";
import type { WebEnv } from "./web-env.ts";

const HEADINGS: Record<number, string> = {
  400: "That request cannot be read",
  403: "You do not have access to this",
  404: "Page not found",
  409: "That conflicts with what is there",
  413: "That request is too large",
  500: "Something went wrong",
};

/** An error answered as a page in the layout (never JSON): status, heading, what to do next. */
export function errorPage(
  c: Context<WebEnv>,
  status: 400 | 403 | 404 | 409 | 413 | 500,
  message: string,
) {
  const heading = HEADINGS[status] ?? "Error";
  return render(
    c,
    <Layout title={heading} viewer={c.get("viewer") ?? null}>
      <div class="error-page">
        <p class="code" aria-hidden="true">
          {status}
        </p>
        <h1>{heading}</h1>
        <p>{message}</p>
        <p>
          <a href="/">Back to your issues</a>
        </p>
      </div>
    </Layout>,
    status,
  );
}
