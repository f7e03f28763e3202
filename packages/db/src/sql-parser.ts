import { Worker } from "node:worker_threads";
import type { ParseResult } from "libpg-query";

type Parser = typeof import("libpg-query");

/**
 * The real Postgres parser (libpg-query) is a WebAssembly module that
 * takes 128 MiB of memory (about 10 MiB of it resident) from the moment it
 * is imported, for the life of the process; V8 counts all of it as the
 * process's external memory. So it is never imported at start: a process loads it
 * when it must parse SQL it does not know in advance (applying migrations,
 * the linter, `sluice upgrade`), and a serving node, which only needs the
 * parse of its own migration files, gets them from a short-lived worker
 * thread (`parseSqlOffThread`) whose memory goes with it.
 */
let parser: Parser | null = null;
const kept = new Map<string, { tree: ParseResult } | { error: string }>();

/** Loads the parser into this process (once; later calls return at once). */
export async function loadSqlParser(): Promise<void> {
  if (parser) return;
  const loaded = await import("libpg-query");
  await loaded.loadModule();
  parser = loaded;
}

/** What the worker thread runs (CommonJS, `eval`): parse each text, answer the trees or errors. */
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
import(workerData.url).then(async (parser) => {
  await parser.loadModule();
  parentPort.postMessage(workerData.texts.map((text) => {
    try { return { tree: parser.parseSync(text) }; }
    catch (error) { return { error: String(error && error.message ? error.message : error) }; }
  }));
});
`;

/**
 * Parses `texts` in a worker thread that exits when done, and keeps their
 * trees (or parse errors) for `parseSql`, so this process never holds the
 * parser's memory. About 100–200 ms, most of it instantiating the parser.
 * Rejects when the worker fails.
 */
export async function parseSqlOffThread(texts: string[]): Promise<void> {
  // Loaded here already (this process applied migrations): no thread is needed.
  if (parser) return;
  const todo = [...new Set(texts)].filter((t) => !kept.has(t));
  if (todo.length === 0) return;
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: { url: import.meta.resolve("libpg-query"), texts: todo },
  });
  const results = await new Promise<({ tree: ParseResult } | { error: string })[]>(
    (resolve, reject) => {
      worker.once("message", resolve);
      worker.once("error", reject);
      worker.once("exit", (code) => reject(new Error(`SQL parser thread exited (${code})`)));
    },
  ).finally(() => worker.terminate());
  todo.forEach((text, i) => {
    const result = results[i];
    if (result) kept.set(text, result);
  });
}

/**
 * The parse tree of `sql`: the one `parseSqlOffThread` kept, else the
 * in-process parser's (`loadSqlParser` first; throws if neither). Throws
 * the parser's error for SQL Postgres would not accept.
 */
export function parseSql(sql: string): ParseResult {
  const known = kept.get(sql);
  if (known) {
    if ("error" in known) throw new Error(known.error);
    return known.tree;
  }
  if (!parser) throw new Error("the SQL parser is not loaded: call loadSqlParser() first");
  return parser.parseSync(sql);
}
