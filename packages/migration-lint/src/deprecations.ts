import { readFileSync } from "node:fs";
import { z } from "zod";

/**
 * `migrations/deprecations.json`: each table or column the code stopped
 * using, with the release whose code no longer reads or writes it. It may
 * be dropped no earlier than two releases after that one (N+2).
 */
const deprecationShape = z.object({
  table: z.string().min(1),
  column: z.string().min(1).optional(),
  stoppedIn: z.string().regex(/^\d+\.\d+\.\d+$/),
  reason: z.string().min(1),
});

export type Deprecation = z.infer<typeof deprecationShape>;

const manifest = z.object({ deprecations: z.array(deprecationShape) });

export function readDeprecations(path: string): Deprecation[] {
  const parsed = manifest.safeParse(JSON.parse(readFileSync(path, "utf8")));
  if (!parsed.success)
    throw new Error(`${path}: ${parsed.error.issues.map((i) => i.message).join("; ")}`);
  return parsed.data.deprecations;
}

/** `issues.logger` or `leases`. */
export function deprecatedName(d: { table: string; column?: string }): string {
  return d.column ? `${d.table}.${d.column}` : d.table;
}
