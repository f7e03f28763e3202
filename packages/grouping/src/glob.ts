/**
 * Sentry's `glob_match` (src/sentry/utils/glob.py) as a compiled matcher:
 * `*` matches any run of characters, or with `paths` any run without `/`
 * while `**` crosses `/`; `?` matches one character; `[...]` a class.
 * With `paths` the value's backslashes count as `/`; `ignoreCase` folds case.
 */
export function compileGlob(
  pattern: string,
  options: { paths?: boolean; ignoreCase?: boolean } = {},
): (value: string) => boolean {
  let source = "";
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i] as string;
    if (ch === "*") {
      if (options.paths && pattern[i + 1] === "*") {
        source += ".*";
        while (pattern[i + 1] === "*") i++;
      } else {
        source += options.paths ? "[^/]*" : ".*";
      }
    } else if (ch === "?") {
      source += ".";
    } else if (ch === "[") {
      const end = pattern.indexOf("]", i + 2);
      if (end === -1) {
        source += "\\[";
      } else {
        let body = pattern.slice(i + 1, end);
        const negated = body.startsWith("!");
        if (negated) body = body.slice(1);
        source += `[${negated ? "^" : ""}${body.replace(/[\\\]^]/g, "\\$&")}]`;
        i = end;
      }
    } else if (ch === "\\" && i + 1 < pattern.length) {
      source += (pattern[i + 1] as string).replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
      i++;
    } else {
      source += ch.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
    }
  }
  const regex = new RegExp(`^${source}$`, options.ignoreCase ? "is" : "s");
  return options.paths
    ? (value) => regex.test(value.replaceAll("\\", "/"))
    : (value) => regex.test(value);
}
