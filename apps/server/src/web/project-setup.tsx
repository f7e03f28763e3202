import { listProjectKeys, type Project } from "@sluice/db";
import { formatDsn } from "@sluice/protocol";
import type { Services } from "../services.ts";

/** The DSNs of a project's active keys (formatDsn: `{scheme}://{key}@{host}/{project id}`). */
export async function projectDsns(services: Services, project: Project) {
  const keys = await listProjectKeys(services.db.orm, project.id);
  return keys.map((key) => ({
    key,
    dsn: formatDsn(services.config.publicUrl, key.publicKey, project.id),
  }));
}

/** A DSN in a read-only field with a "Copy DSN" button (the script copies; without it, select and copy). */
export function DsnField({ id, dsn, label }: { id: string; dsn: string; label: string }) {
  return (
    <div class="field">
      <label for={id}>{label}</label>
      <div class="dsn">
        <input type="text" id={id} value={dsn} readonly />
        <button type="button" data-copy={id}>
          Copy DSN
        </button>
      </div>
    </div>
  );
}

/**
 * What an empty project shows: its DSN and the two lines that send errors
 * with a Sentry SDK (docs.sentry.io platforms javascript and node: `init`
 * with the DSN; any uncaught error is then reported).
 */
export function EmptyProject({ project, dsn }: { project: Project; dsn: string | null }) {
  return (
    <section class="panel" aria-labelledby="setup-heading">
      <h2 id="setup-heading">{`No issues in ${project.slug} yet`}</h2>
      {dsn ? (
        <>
          <p>Point a Sentry SDK at this DSN; the first error it reports appears here.</p>
          <DsnField id={`dsn-${project.id}`} dsn={dsn} label={`DSN of ${project.slug}`} />
          <pre class="snippet">
            <code>{`import * as Sentry from "@sentry/node";\nSentry.init({ dsn: "${dsn}" });`}</code>
          </pre>
        </>
      ) : (
        <p>This project has no active key: add one in its settings to get a DSN.</p>
      )}
    </section>
  );
}
