import { randomBytes } from "node:crypto";
import {
  brotliCompressSync,
  deflateRawSync,
  deflateSync,
  gzipSync,
  constants as zlibConstants,
} from "node:zlib";
import { readCaptures } from "../fixtures.ts";

/** One HTTP request the fuzzer sends; `path` includes the query string. */
export type FuzzRequest = {
  /** What was done to it, for the report (`envelope:item-type,gzip,auth=query`). */
  kind: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Buffer | null;
};

/** The Sluice under test: its project, a second project, their DSN keys, an API token. */
export type FuzzTarget = {
  projectId: number;
  publicKey: string;
  otherProjectId: number;
  otherPublicKey: string;
  org: string;
  project: string;
  /** API token; null skips API requests. */
  token: string | null;
};

/** A small seeded PRNG (mulberry32): input `i` of seed `s` is the same on every run. */
class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(list: readonly T[]): T {
    return list[this.int(list.length)] as T;
  }

  /** Picks by weight: `[[weight, value], ...]`. */
  weighted<T>(choices: readonly (readonly [number, T])[]): T {
    const total = choices.reduce((sum, [w]) => sum + w, 0);
    let r = this.next() * total;
    for (const [w, value] of choices) {
      r -= w;
      if (r < 0) return value;
    }
    return (choices.at(-1) as readonly [number, T])[1];
  }
}

/** JSON text written as is, for documents too deep or too odd to build as values. */
class Raw {
  constructor(readonly text: string) {}
}

type Json = unknown;
type EnvelopeModel = {
  header: Json;
  items: { header: Json; payload: Buffer; length: "keep" | "drop" | "fixed" }[];
};

type CaptureSeed = {
  name: string;
  form: "envelope" | "store";
  contentType: string | undefined;
  body: Buffer;
  envelope: EnvelopeModel | null;
};

/** The real SDK captures, split into a model the mutators edit, and the bombs, built once. */
export type Corpus = { seeds: CaptureSeed[]; bombs: Bomb[] };

type Bomb = { name: string; encoding: string; wire: Buffer; decodedBytes: number };

const MiB = 1024 * 1024;

/** Splits a well-formed captured envelope (the fixtures are real SDK output, so the framing is sound). */
function splitEnvelope(body: Buffer): EnvelopeModel {
  let pos = body.indexOf(0x0a);
  if (pos < 0) pos = body.length;
  const header = JSON.parse(body.toString("utf8", 0, pos));
  const items: EnvelopeModel["items"] = [];
  pos += 1;
  while (pos < body.length) {
    if (body[pos] === 0x0a) {
      pos += 1;
      continue;
    }
    let end = body.indexOf(0x0a, pos);
    if (end < 0) end = body.length;
    const itemHeader = JSON.parse(body.toString("utf8", pos, end));
    pos = end + 1;
    if (typeof itemHeader.length === "number") {
      items.push({
        header: itemHeader,
        payload: body.subarray(pos, pos + itemHeader.length),
        length: "keep",
      });
      pos += itemHeader.length + 1;
    } else {
      let payloadEnd = body.indexOf(0x0a, pos);
      if (payloadEnd < 0) payloadEnd = body.length;
      items.push({ header: itemHeader, payload: body.subarray(pos, payloadEnd), length: "drop" });
      pos = payloadEnd + 1;
    }
  }
  return { header, items };
}

function serialize(model: EnvelopeModel): Buffer {
  const parts: Buffer[] = [Buffer.from(`${text(model.header)}\n`)];
  for (const item of model.items) {
    let header = item.header;
    if (item.length === "keep" && isObject(header)) {
      header = { ...header, length: item.payload.length };
    }
    parts.push(Buffer.from(`${text(header)}\n`), item.payload, Buffer.from("\n"));
  }
  return Buffer.concat(parts);
}

const text = (value: Json): string =>
  value instanceof Raw ? value.text : (JSON.stringify(value) ?? "null");

const isObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof Raw);

/** Reads the captures and builds the few bombs (modest: at most 64 MiB decoded each). */
export function loadCorpus(): Corpus {
  const seeds: CaptureSeed[] = [];
  for (const capture of readCaptures()) {
    const form = capture.path.includes("/store/") ? "store" : "envelope";
    seeds.push({
      name: `${capture.file.replace(".jsonl", "")}#${capture.seq}`,
      form,
      contentType: capture.headers["content-type"],
      body: capture.body,
      envelope: form === "envelope" ? splitEnvelope(capture.body) : null,
    });
  }
  const brackets = Buffer.alloc(20 * MiB, "[");
  const sessions = Buffer.from(
    `{}\n${'{"type":"session"}\n{"sid":"x","status":"ok"}\n'.repeat(Math.floor((8 * MiB) / 46))}`,
  );
  const zeros = Buffer.alloc(64 * MiB);
  const spaces = Buffer.alloc(16 * MiB, " ");
  const bombs: Bomb[] = [
    {
      name: "gzip-20MiB-brackets",
      encoding: "gzip",
      wire: gzipSync(brackets),
      decodedBytes: brackets.length,
    },
    {
      name: "br-20MiB-brackets",
      encoding: "br",
      wire: brotli(brackets),
      decodedBytes: brackets.length,
    },
    {
      name: "gzip-64MiB-zeros",
      encoding: "gzip",
      wire: gzipSync(zeros),
      decodedBytes: zeros.length,
    },
    {
      name: "deflate-16MiB-spaces",
      encoding: "deflate",
      wire: deflateSync(spaces),
      decodedBytes: spaces.length,
    },
    {
      name: "gzip-8MiB-sessions",
      encoding: "gzip",
      wire: gzipSync(sessions),
      decodedBytes: sessions.length,
    },
    {
      name: "gzip-item-header-brackets",
      encoding: "gzip",
      wire: gzipSync(Buffer.concat([Buffer.from("{}\n"), brackets.subarray(0, 8 * MiB)])),
      decodedBytes: 8 * MiB + 3,
    },
  ];
  return { seeds, bombs };
}

const brotli = (input: Buffer) =>
  brotliCompressSync(input, { params: { [zlibConstants.BROTLI_PARAM_QUALITY]: 4 } });

const SPECIAL_NAMES = [
  "__proto__",
  "constructor",
  "toString",
  "hasOwnProperty",
  "valueOf",
  "prototype",
  "__defineGetter__",
];

const ITEM_TYPES = [
  "event",
  "transaction",
  "attachment",
  "session",
  "sessions",
  "client_report",
  "user_report",
  "feedback",
  "check_in",
  "log",
  "span",
  "profile",
  "replay_event",
  "replay_recording",
  "statsd",
  "metric_buckets",
  "trace_metric",
  "EVENT",
  "",
  ...SPECIAL_NAMES,
];

/** Odd strings: NUL, lone surrogates, bidi controls, percent junk, very long ones. */
function oddString(rng: Rng): string {
  return rng.weighted<() => string>([
    [
      3,
      () =>
        rng.pick([
          "\u0000",
          "a\u0000b",
          "\ud800",
          "x\udfff",
          "\ud83d",
          "\u202e\u2066abc",
          "\ufeff",
        ]),
    ],
    [2, () => rng.pick(["%E0%A4%A", "%00", "%ZZ", "%", "%ff%fe", "%25%30%30"])],
    [
      2,
      () => rng.pick(["", " ", "\t", "\r\n", "\\", '"', "'", "..", ".", "latest", "none", "a/b"]),
    ],
    [2, () => rng.pick(SPECIAL_NAMES)],
    [1, () => "é".repeat(1 + rng.int(5000))],
    [1, () => "x".repeat(1 + rng.int(rng.chance(0.1) ? 300_000 : 3000))],
    [1, () => "🙂".repeat(1 + rng.int(500))],
    [1, () => randomText(rng, 1 + rng.int(64))],
  ])();
}

function randomText(rng: Rng, length: number): string {
  let out = "";
  for (let i = 0; i < length; i++) out += String.fromCharCode(rng.int(0x10000));
  return out;
}

const HUGE_NUMBERS = [
  2 ** 63,
  2 ** 63 - 1,
  -(2 ** 63),
  2 ** 64,
  1e308,
  -1e308,
  5e-324,
  -0,
  0.5,
  Number.MAX_SAFE_INTEGER + 2,
];
/** Number literals JSON.parse takes but neither int8 nor `numeric` does. */
const HUGE_LITERALS = [
  "9223372036854775808",
  "1e999999",
  "-1e-99999",
  "1E400",
  "18446744073709551616",
];

function oddValue(rng: Rng, depth = 0): Json {
  return rng.weighted<() => Json>([
    [4, () => oddString(rng)],
    [3, () => rng.pick(HUGE_NUMBERS)],
    [2, () => new Raw(rng.pick(HUGE_LITERALS))],
    [1, () => new Raw(rng.pick(["NaN", "Infinity", "-Infinity"]))],
    [1, () => rng.pick([null, true, false, 0, -1, [], {}])],
    [1, () => new Raw(deepJson(rng))],
    [depth < 3 ? 1 : 0, () => Array.from({ length: rng.int(4) }, () => oddValue(rng, depth + 1))],
    [
      depth < 3 ? 1 : 0,
      () =>
        Object.fromEntries(
          Array.from({ length: rng.int(4) }, () => [oddKey(rng), oddValue(rng, depth + 1)]),
        ),
    ],
  ])();
}

function oddKey(rng: Rng): string {
  return rng.chance(0.4) ? rng.pick(SPECIAL_NAMES) : oddString(rng).slice(0, 64);
}

/** Deeply nested JSON: balanced arrays or objects, or brackets that never close. */
function deepJson(rng: Rng): string {
  const depth = rng.pick([200, 1_000, 10_000, 100_000]);
  return rng.pick([
    () => `${"[".repeat(depth)}${"]".repeat(depth)}`,
    () => `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`,
    () => "[".repeat(depth),
  ])();
}

/** Writes `value` as JSON text, splicing in `Raw` parts (which JSON.stringify cannot hold). */
function stringifyWithRaw(value: Json): string {
  if (value instanceof Raw) return value.text;
  if (Array.isArray(value)) return `[${value.map(stringifyWithRaw).join(",")}]`;
  if (isObject(value)) {
    return `{${Object.entries(value)
      .map(([k, v]) => `${JSON.stringify(k)}:${stringifyWithRaw(v)}`)
      .join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

/** Edits a JSON document at a random path (own properties only), returning its text. */
function editJson(rng: Rng, source: Buffer, edits: number): Buffer {
  let doc: Json;
  try {
    doc = JSON.parse(source.toString("utf8"));
  } catch {
    return source;
  }
  for (let e = 0; e < edits; e++) {
    let node: Json = doc;
    for (let step = 0; step < 6; step++) {
      if (Array.isArray(node)) {
        if (node.length === 0 || rng.chance(0.25)) {
          node.push(oddValue(rng));
          break;
        }
        const i = rng.int(node.length);
        if (rng.chance(0.3) || node[i] === null || typeof node[i] !== "object") {
          node[i] = oddValue(rng);
          break;
        }
        node = node[i];
      } else if (isObject(node)) {
        const keys = Object.keys(node);
        if (keys.length === 0 || rng.chance(0.25)) {
          Object.defineProperty(node, oddKey(rng), {
            value: oddValue(rng),
            enumerable: true,
            writable: true,
            configurable: true,
          });
          break;
        }
        const key = rng.pick(keys);
        const child = node[key];
        if (
          rng.chance(0.3) ||
          child === null ||
          typeof child !== "object" ||
          child instanceof Raw
        ) {
          node[key] = oddValue(rng);
          break;
        }
        node = child;
      } else break;
    }
  }
  try {
    return Buffer.from(stringifyWithRaw(doc));
  } catch {
    // A document nested deeper than this stack (an earlier mutation's) is sent as it was.
    return source;
  }
}

function clientReport(rng: Rng): Buffer {
  const quantity = rng.pick<Json>([
    new Raw("9223372036854775807"),
    new Raw("9223372036854775808"),
    2 ** 62,
    -5,
    1.5,
    "7",
    new Raw("1e999999"),
    1,
  ]);
  const outcome = {
    reason: rng.chance(0.5) ? "before_send" : oddString(rng).slice(0, 300),
    category: rng.chance(0.5)
      ? "error"
      : rng.pick([...SPECIAL_NAMES, "transaction", "x".repeat(500)]),
    quantity,
  };
  const list = Array.from({ length: 1 + rng.int(rng.chance(0.1) ? 5000 : 3) }, () => outcome);
  const key = rng.pick(["discarded_events", "rate_limited_events", "filtered_events", "__proto__"]);
  return Buffer.from(stringifyWithRaw({ timestamp: Date.now() / 1000, [key]: list }));
}

type Mutator = (rng: Rng, model: EnvelopeModel) => string;

/** Structure-aware mutations of an envelope model; each returns its name for the report. */
const MUTATORS: [number, Mutator][] = [
  [
    3,
    (rng, m) => {
      const key = rng.pick(["dsn", "event_id", "sent_at", "sdk", "trace", oddKey(rng)]);
      if (isObject(m.header)) m.header = { ...m.header, [key]: oddValue(rng) };
      return `header.${key.slice(0, 12)}`;
    },
  ],
  [
    1,
    (rng, m) => {
      m.header = rng.chance(0.5) ? new Raw(deepJson(rng)) : oddValue(rng);
      return "header-replaced";
    },
  ],
  [
    3,
    (rng, m) => {
      const item = rng.pick(m.items);
      if (item && isObject(item.header)) {
        item.header = {
          ...item.header,
          type: rng.chance(0.7) ? rng.pick(ITEM_TYPES) : oddValue(rng),
        };
      }
      return "item-type";
    },
  ],
  [
    2,
    (rng, m) => {
      const item = rng.pick(m.items);
      if (item && isObject(item.header)) {
        item.length = "fixed";
        const delta = rng.pick([-1, 1, 1000, -1000]);
        item.header = {
          ...item.header,
          length: rng.chance(0.5)
            ? Math.max(0, item.payload.length + delta)
            : rng.pick<Json>([...HUGE_NUMBERS, -1, "10", null, new Raw("1e999999")]),
        };
      }
      return "item-length";
    },
  ],
  [
    2,
    (rng, m) => {
      const item = rng.pick(m.items);
      if (item && isObject(item.header)) {
        const key = rng.pick(["content_type", "filename", "attachment_type", oddKey(rng)]);
        item.header = { ...item.header, [key]: oddValue(rng) };
      }
      return "item-header-field";
    },
  ],
  [
    1,
    (rng, m) => {
      const item = rng.pick(m.items);
      if (item) item.header = new Raw(deepJson(rng));
      return "item-header-deep";
    },
  ],
  [
    6,
    (rng, m) => {
      const item = rng.pick(m.items);
      if (item) item.payload = editJson(rng, item.payload, 1 + rng.int(4));
      return "payload-edit";
    },
  ],
  [
    1,
    (rng, m) => {
      const item = rng.pick(m.items);
      if (item) item.payload = Buffer.from(deepJson(rng));
      return "payload-deep";
    },
  ],
  [
    2,
    (rng, m) => {
      m.items.push({
        header: { type: "client_report" },
        payload: clientReport(rng),
        length: "keep",
      });
      return "client-report";
    },
  ],
  [
    2,
    (rng, m) => {
      const item = rng.pick(m.items);
      const copies = rng.pick([2, 10, 40, 200]);
      if (item) for (let i = 0; i < copies; i++) m.items.push({ ...item });
      return `duplicate-x${copies}`;
    },
  ],
  [
    1,
    (rng, m) => {
      const many = rng.pick([100, 1000, 5000]);
      for (let i = 0; i < many; i++) {
        m.items.push({
          header: { type: rng.chance(0.5) ? `t${rng.int(1e9)}` : rng.pick(ITEM_TYPES) },
          payload: Buffer.from("{}"),
          length: rng.chance(0.5) ? "keep" : "drop",
        });
      }
      return `many-items-${many}`;
    },
  ],
  [
    1,
    (rng, m) => {
      m.items = m.items.filter(() => rng.chance(0.5));
      return "drop-items";
    },
  ],
  [
    1,
    (rng, m) => {
      const item = rng.pick(m.items);
      if (item) {
        item.payload = Buffer.concat([
          item.payload,
          rng.pick([Buffer.from([0xed, 0xa0, 0x80]), Buffer.from([0xff, 0xfe]), Buffer.from([0])]),
        ]);
      }
      return "payload-bad-utf8";
    },
  ],
  [
    1,
    (rng, m) => {
      const item = rng.pick(m.items);
      if (item) item.payload = randomBytes(rng.int(2000));
      return "payload-random";
    },
  ],
];

/** Byte-level damage after serializing: truncation, insertions, flips. */
function damage(rng: Rng, body: Buffer): [Buffer, string] {
  const at = rng.int(body.length + 1);
  return rng.pick<() => [Buffer, string]>([
    () => [body.subarray(0, at), "truncate"],
    () => [
      Buffer.concat([body.subarray(0, at), randomBytes(1 + rng.int(16)), body.subarray(at)]),
      "insert",
    ],
    () => {
      const copy = Buffer.from(body);
      for (let i = 0; i < 1 + rng.int(8); i++) copy[rng.int(copy.length)] = rng.int(256);
      return [copy, "flip"];
    },
    () => [Buffer.concat([body, Buffer.from("\n\n\n")]), "trailing-newlines"],
  ])();
}

/** Compresses (or pretends to) as a client might; the header may lie. */
function encodeBody(
  rng: Rng,
  body: Buffer,
): { body: Buffer; encoding: string | undefined; name: string } {
  const choice = rng.weighted<string>([
    [50, "identity"],
    [18, "gzip"],
    [6, "deflate"],
    [3, "deflate-raw"],
    [8, "br"],
    [2, "x-gzip"],
    [3, "lying-gzip"],
    [3, "corrupt"],
    [3, "truncated"],
    [1, "zstd"],
    [1, "unknown"],
    [2, "double-gzip"],
  ]);
  switch (choice) {
    case "identity":
      return { body, encoding: rng.chance(0.1) ? "identity" : undefined, name: choice };
    case "gzip":
    case "x-gzip":
      return { body: gzipSync(body, { level: 1 }), encoding: choice, name: choice };
    case "deflate":
      return { body: deflateSync(body, { level: 1 }), encoding: "deflate", name: choice };
    case "deflate-raw":
      return { body: deflateRawSync(body, { level: 1 }), encoding: "deflate", name: choice };
    case "br":
      return { body: brotli(body), encoding: rng.chance(0.2) ? " BR " : "br", name: choice };
    case "lying-gzip":
      return { body, encoding: rng.pick(["gzip", "br", "deflate"]), name: choice };
    case "corrupt": {
      const wire = Buffer.from(gzipSync(body, { level: 1 }));
      for (let i = 0; i < 1 + rng.int(4); i++) {
        const at = Math.min(wire.length - 1, 10 + rng.int(Math.max(1, wire.length - 10)));
        wire[at] = (wire[at] as number) ^ 0xff;
      }
      return { body: wire, encoding: "gzip", name: choice };
    }
    case "truncated": {
      const wire = brotli(body);
      return { body: wire.subarray(0, rng.int(wire.length)), encoding: "br", name: choice };
    }
    case "zstd":
      return { body, encoding: "zstd", name: choice };
    case "double-gzip":
      return { body: gzipSync(gzipSync(body)), encoding: "gzip, gzip", name: choice };
    default:
      return {
        body,
        encoding: rng.pick(["compress", "gzip;q=1", "__proto__", "constructor", "*"]),
        name: choice,
      };
  }
}

/** A DSN key as a careless or hostile client sends it. */
function chooseKey(rng: Rng, target: FuzzTarget): [string, string] {
  return rng.weighted<() => [string, string]>([
    [70, () => [target.publicKey, "good"]],
    [5, () => [target.otherPublicKey, "other-project"]],
    [5, () => [randomBytes(16).toString("hex"), "unknown-hex"]],
    [2, () => [target.publicKey.toUpperCase(), "upper"]],
    [3, () => ["k".repeat(rng.pick([33, 1024, 65_536])), "long"]],
    [2, () => ["%E0%A4%A", "bad-percent"]],
    [2, () => ["", "empty"]],
    [3, () => [oddString(rng).slice(0, 200), "odd"]],
  ])();
}

/** Percent-encodes any string; lone surrogates (which encodeURIComponent refuses) become U+FFFD. */
const uriPart = (value: string) => encodeURIComponent(value.toWellFormed());

/** Header values must be Latin-1 without controls (Node refuses others before sending). */
const headerSafe = (value: string) => value.replace(/[^\x20-\x7e\x80-\xff]/g, "?");

const CONTENT_TYPES = [
  "application/x-sentry-envelope",
  "application/json",
  "text/plain;charset=UTF-8",
  "application/octet-stream",
  "multipart/form-data; boundary=x",
  "",
  "application/x-sentry-envelope; charset=\u00ff",
];

/** The ingest path for a project id, sometimes a wrong or hostile one. */
function projectPath(rng: Rng, target: FuzzTarget, form: "envelope" | "store"): [string, string] {
  const pid = rng.weighted<() => [string, string]>([
    [90, () => [String(target.projectId), ""]],
    [3, () => [String(target.otherProjectId), "pid-other"]],
    [
      2,
      () => [
        rng.pick(["0", "999999999", "99999999999999999999", "9223372036854775808"]),
        "pid-odd",
      ],
    ],
    [1, () => [rng.pick(["abc", "-1", "1.5", "%00", "__proto__"]), "pid-junk"]],
  ])();
  if (form === "store" && rng.chance(0.1)) return ["/api/store/", "legacy-store"];
  const slash = rng.chance(0.05) ? "" : "/";
  return [`/api/${pid[0]}/${form}${slash}`, pid[1]];
}

/**
 * Every this many inputs, one real capture as its SDK sent it: it must be
 * answered 200, so a mutation that broke the project for everyone shows.
 */
const CANARY_EVERY = 250;

/**
 * Builds input `index` of the run seeded `seed`: a real SDK capture
 * mutated structure-aware (envelope and item headers, declared lengths,
 * payload fields, item types, duplicates, nesting, huge numbers, odd
 * strings), encoded or mis-encoded, with the DSN key in the query, the
 * `X-Sentry-Auth` header, the envelope's `dsn` or nowhere; or a bomb; or
 * an API request with bad parameters. Deterministic in (seed, index).
 */
export function generateInput(
  corpus: Corpus,
  target: FuzzTarget,
  seed: number,
  index: number,
): FuzzRequest {
  if (index % CANARY_EVERY === CANARY_EVERY - 1) {
    const canaries = warmupInputs(corpus, target).filter(
      (r) => r.kind.includes("#") && r.path.includes("/envelope/"),
    );
    const canary = canaries[Math.floor(index / CANARY_EVERY) % canaries.length] as FuzzRequest;
    return { ...canary, kind: canary.kind.replace("warmup:", "canary:") };
  }
  const rng = new Rng((seed * 0x9e3779b1 + index * 0x85ebca6b) >>> 0);
  const what = rng.weighted<string>([
    [target.token ? 6 : 0, "api"],
    [1, "bomb"],
    [3, "random"],
    [90, "capture"],
  ]);
  if (what === "api") return apiInput(rng, target);
  const tags: string[] = [];
  let body: Buffer;
  let form: "envelope" | "store" = "envelope";
  let contentType: string | undefined;
  let encoding: string | undefined;
  let model: EnvelopeModel | null = null;

  if (what === "bomb") {
    const bomb = rng.pick(corpus.bombs);
    body = bomb.wire;
    encoding = bomb.encoding;
    tags.push(`bomb:${bomb.name}`);
  } else if (what === "random") {
    body = rng.chance(0.5)
      ? randomBytes(rng.int(4096))
      : Buffer.from(randomText(rng, rng.int(2000)));
    form = rng.chance(0.7) ? "envelope" : "store";
    tags.push("random-bytes");
  } else {
    const seedCapture = rng.pick(corpus.seeds);
    form = seedCapture.form;
    contentType = seedCapture.contentType;
    tags.push(seedCapture.name);
    if (seedCapture.envelope) {
      model = structuredClone(seedCapture.envelope);
      model.items = model.items.map((i) => ({ ...i, payload: Buffer.from(i.payload) }));
      const mutations = rng.weighted([
        [2, 0],
        [5, 1],
        [3, 2],
        [1, 4],
      ]);
      for (let i = 0; i < mutations; i++) tags.push(rng.weighted(MUTATORS)(rng, model));
      body = Buffer.alloc(0);
    } else {
      const edits = rng.chance(0.15) ? 0 : 1 + rng.int(4);
      body = editJson(rng, seedCapture.body, edits);
      if (edits > 0) tags.push(`store-edit-${edits}`);
      if (rng.chance(0.05)) {
        body = Buffer.from(deflateSync(body).toString("base64"));
        tags.push("legacy-base64-zlib");
      }
    }
  }

  const [key, keyKind] = chooseKey(rng, target);
  const place = rng.weighted<string>([
    [45, "query"],
    [30, "header"],
    [form === "envelope" ? 15 : 0, "dsn"],
    [5, "none"],
    [5, "both"],
  ]);
  tags.push(`auth=${place}:${keyKind}`);
  if (model) {
    if ((place === "dsn" || place === "both") && isObject(model.header)) {
      const dsn = rng.chance(0.1)
        ? rng.pick(["http://%E0%A4%A@x/1", "not a url", `http://${key}@127.0.0.1`, "http://@/"])
        : `http://${uriPart(key)}@127.0.0.1/${target.projectId}`;
      model.header = { ...model.header, dsn };
    } else if (isObject(model.header) && "dsn" in model.header) {
      const { dsn: _dsn, ...rest } = model.header;
      model.header = rest;
    }
    body = serialize(model);
  }
  if (what === "capture" && rng.chance(0.05)) {
    const [damaged, how] = damage(rng, body);
    body = damaged;
    tags.push(how);
  }
  if (what !== "bomb") {
    const encoded = encodeBody(rng, body);
    body = encoded.body;
    encoding = encoded.encoding;
    if (encoded.name !== "identity") tags.push(encoded.name);
  }

  const [path, pathTag] = projectPath(rng, target, form);
  if (pathTag) tags.push(pathTag);
  const query = new URLSearchParams();
  if (place === "query" || place === "both") {
    query.set("sentry_key", key);
    query.set("sentry_version", rng.chance(0.9) ? "7" : oddString(rng).slice(0, 20));
  }
  let search = query.toString();
  if (place === "query" && keyKind === "bad-percent")
    search = `sentry_key=%E0%A4%A&sentry_version=7`;
  const headers: Record<string, string> = {};
  if (place === "header" || place === "both") {
    headers["x-sentry-auth"] = headerSafe(
      rng.chance(0.9)
        ? `Sentry sentry_key=${key}, sentry_version=7, sentry_client=fuzz/1.0`
        : rng.pick([
            `Sentry ${key}`,
            `sentry_key=${key}`,
            `Sentry sentry_key=,,,`,
            `Bearer ${key}`,
          ]),
    );
  }
  if (encoding !== undefined) headers["content-encoding"] = encoding;
  const type = rng.chance(0.1) ? rng.pick(CONTENT_TYPES) : contentType;
  if (type !== undefined) headers["content-type"] = headerSafe(type);
  if (rng.chance(0.03)) {
    tags.push("store-as-envelope");
    headers["content-type"] = "application/x-sentry-envelope";
    return {
      kind: tags.join(","),
      method: "POST",
      path: `/api/${target.projectId}/store/${search ? `?${search}` : ""}`,
      headers,
      body,
    };
  }
  return {
    kind: tags.join(","),
    method: "POST",
    path: search ? `${path}?${search}` : path,
    headers,
    body,
  };
}

/** API requests with bad parameters: NUL and odd text in `query=`, cursors beyond bigint, bad `per_page`. */
function apiInput(rng: Rng, target: FuzzTarget): FuzzRequest {
  const { org, project } = target;
  const odd = () => oddString(rng).slice(0, rng.chance(0.1) ? 100_000 : 500);
  const cursor = () =>
    rng.pick([
      "0:0:0",
      "0:99999999999999999999:0",
      "0:9223372036854775807:0",
      "0:-1:0",
      "1:1:1:1",
      "abc",
      "",
      odd(),
    ]);
  const perPage = () =>
    rng.pick(["0", "-1", "1", "100", "101", "1e9", "abc", "99999999999999999999", odd()]);
  const q = (params: Record<string, string>) => `?${new URLSearchParams(params).toString()}`;
  const release = uriPart(odd() || "v");
  const choice = rng.weighted<() => Omit<FuzzRequest, "headers"> & { json?: unknown }>([
    [
      5,
      () => ({
        kind: "api:issues",
        method: "GET",
        path: `/api/0/projects/${org}/${project}/issues/${q({ query: odd(), cursor: cursor(), per_page: perPage() })}`,
        body: null,
      }),
    ],
    [
      2,
      () => ({
        kind: "api:org-releases",
        method: "GET",
        path: `/api/0/organizations/${org}/releases/${q({ query: odd(), cursor: cursor(), per_page: perPage() })}`,
        body: null,
      }),
    ],
    [
      2,
      () => ({
        kind: "api:issue",
        method: "GET",
        path: `/api/0/issues/${uriPart(rng.pick(["1", "0", "-1", "99999999999999999999", odd()]))}/`,
        body: null,
      }),
    ],
    [
      1,
      () => ({
        kind: "api:issue-events",
        method: "GET",
        path: `/api/0/issues/1/events/${q({ cursor: cursor(), per_page: perPage() })}`,
        body: null,
      }),
    ],
    [
      2,
      () => ({
        kind: "api:event",
        method: "GET",
        path: `/api/0/projects/${org}/${project}/events/${uriPart(odd() || "x")}/`,
        body: null,
      }),
    ],
    [
      2,
      () => ({
        kind: "api:release-create",
        method: "POST",
        path: `/api/0/organizations/${org}/releases/`,
        body: null,
        json: { version: odd(), projects: [project], ref: odd() },
      }),
    ],
    [
      1,
      () => ({
        kind: "api:release-get",
        method: "GET",
        path: `/api/0/projects/${org}/${project}/releases/${release}/`,
        body: null,
      }),
    ],
    [
      1,
      () => ({
        kind: "api:release-put",
        method: "PUT",
        path: `/api/0/organizations/${org}/releases/${release}/`,
        body: null,
        json: { commits: [{ id: odd(), repository: odd() }], dateReleased: odd() },
      }),
    ],
    [
      1,
      () => ({
        kind: "api:deploy",
        method: "POST",
        path: `/api/0/organizations/${org}/releases/${release}/deploys/`,
        body: null,
        json: { environment: odd(), name: odd() },
      }),
    ],
    [
      1,
      () => ({
        kind: "api:issue-put",
        method: "PUT",
        path: `/api/0/issues/1/`,
        body: null,
        json: { status: rng.pick(["resolved", odd(), 1, null]) },
      }),
    ],
    [
      1,
      () => ({
        kind: "api:bad-json",
        method: "POST",
        path: `/api/0/organizations/${org}/releases/`,
        body: Buffer.from(
          rng.pick([
            "{",
            "[]",
            "null",
            `{"version":${"[".repeat(100_000)}`,
            '{"version":"\\u0000"}',
          ]),
        ),
      }),
    ],
  ])();
  const headers: Record<string, string> = {
    authorization: rng.chance(0.95) ? `Bearer ${target.token}` : headerSafe(`Bearer ${odd()}`),
  };
  let body = choice.body;
  if (choice.json !== undefined) body = Buffer.from(JSON.stringify(choice.json));
  if (body) headers["content-type"] = "application/json";
  return { kind: choice.kind, method: choice.method, path: choice.path, headers, body };
}

/**
 * Every capture as its SDK sent it (key in the query), for a warm-up before
 * the clock starts: the first requests compile the server's code paths.
 */
export function warmupInputs(corpus: Corpus, target: FuzzTarget): FuzzRequest[] {
  return corpus.seeds.map(
    (seed): FuzzRequest => ({
      kind: `warmup:${seed.name}`,
      method: "POST",
      path: `/api/${target.projectId}/${seed.form}/?sentry_key=${target.publicKey}&sentry_version=7`,
      headers: seed.contentType ? { "content-type": seed.contentType } : {},
      body: seed.body,
    }),
  );
}
