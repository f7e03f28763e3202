/**
 * Whether Postgres can store `value`: `text` refuses NUL, and `jsonb` also
 * unpaired UTF-16 surrogates; neither may reach a query.
 */
export function isStorableText(value: string): boolean {
  return !value.includes("\u0000") && value.isWellFormed();
}
