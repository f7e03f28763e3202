import type { ExceptionValue } from "@sluice/protocol";

/**
 * Picks the exceptions of an exception group that group the event, as
 * Sentry's `filter_exceptions_for_exception_groups` does (src/sentry/
 * grouping/strategies/newstyle.py, RFC 79): rebuilds the tree from
 * `mechanism.exception_id`/`parent_id`, takes the top-level exceptions (the
 * first descendants of the root that are not groups), sorts them by type,
 * reverse, and folds neighbours whose grouping values (`keyOf`) are equal.
 * One distinct exception stands for the whole event (with its first-path
 * children); several are returned with the root group after them. Returns
 * the input unchanged when ids are missing, duplicated, cyclic or there is
 * no root `0`.
 */
export function filterExceptionGroups(
  exceptions: ExceptionValue[],
  keyOf: (exception: ExceptionValue) => string,
): ExceptionValue[] {
  if (exceptions.length <= 1) return exceptions;
  const nodes = new Map<number, { exception?: ExceptionValue; children: ExceptionValue[] }>();
  const node = (id: number) => {
    let n = nodes.get(id);
    if (!n) {
      n = { children: [] };
      nodes.set(id, n);
    }
    return n;
  };
  for (const exception of [...exceptions].reverse()) {
    const id = exception.mechanism?.exception_id;
    if (typeof id !== "number") return exceptions;
    const own = node(id);
    if (own.exception) return exceptions;
    own.exception = exception;
    const parent = exception.mechanism?.parent_id;
    if (typeof parent === "number") {
      if (parent === id) return exceptions;
      node(parent).children.push(exception);
    }
  }
  const root = nodes.get(0)?.exception;
  if (!root) return exceptions;
  const childrenOf = (e: ExceptionValue) =>
    nodes.get(e.mechanism?.exception_id as number)?.children ?? [];

  const topLevel: ExceptionValue[] = [];
  const visited = new Set<ExceptionValue>();
  const stack: ExceptionValue[] = [root];
  while (stack.length > 0) {
    const e = stack.pop() as ExceptionValue;
    if (visited.has(e)) return exceptions;
    visited.add(e);
    if (e.mechanism?.is_exception_group) stack.push(...[...childrenOf(e)].reverse());
    else topLevel.push(e);
  }
  // Python's sorted(reverse=True) is stable: equal types keep their order.
  const sorted = topLevel
    .map((e, i) => ({ e, i, type: String(e.type ?? "None") }))
    .sort((a, b) => (a.type < b.type ? 1 : a.type > b.type ? -1 : a.i - b.i))
    .map((x) => x.e);
  const distinct: ExceptionValue[] = [];
  let lastKey: string | null = null;
  for (const e of sorted) {
    const key = keyOf(e);
    if (key !== lastKey) distinct.push(e);
    lastKey = key;
  }
  if (distinct.length === 1) {
    const path: ExceptionValue[] = [];
    let current: ExceptionValue | undefined = distinct[0];
    const seen = new Set<ExceptionValue>();
    while (current && !seen.has(current)) {
      seen.add(current);
      path.push(current);
      current = childrenOf(current)[0];
    }
    return path.reverse();
  }
  return [...distinct, root];
}
