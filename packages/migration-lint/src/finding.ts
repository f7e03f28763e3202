/** One problem the linter found, printed as `file:line: [rule] message`. */
export type Finding = { file: string; line: number; rule: string; message: string };

export function formatFinding(f: Finding): string {
  return `${f.file}:${f.line}: [${f.rule}] ${f.message}`;
}
