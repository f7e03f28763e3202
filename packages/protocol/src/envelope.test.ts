import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  EnvelopeFramingCheck,
  MAX_ENVELOPE_ITEMS,
  MAX_HEADER_DEPTH,
  MAX_HEADER_LINE_BYTES,
  parseEnvelope,
  parseEnvelopeHeader,
} from "./envelope.ts";

const parse = (text: string | Buffer) =>
  parseEnvelope(Buffer.isBuffer(text) ? text : Buffer.from(text));

describe("parseEnvelope", () => {
  it("reads items with and without length, with or without a trailing newline", () => {
    const result = parse(
      '{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc"}\n{"type":"attachment","length":10}\nhello\nyou\n\n{"type":"session"}\n{"sid":"x"}',
    );
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.envelope.headers.event_id).toBe("9ec79c33ec9942ab8353589fcb2e04dc");
    expect(result.envelope.items.map((i) => [i.headers.type, i.payload.toString()])).toEqual([
      ["attachment", "hello\nyou\n"],
      ["session", '{"sid":"x"}'],
    ]);
  });

  it("keeps binary payloads intact when a length is given", () => {
    const binary = Buffer.from([0, 10, 255, 13, 10]);
    const body = Buffer.concat([
      Buffer.from('{}\n{"type":"attachment","length":5}\n'),
      binary,
      Buffer.from("\n"),
    ]);
    const result = parse(body);
    expect(result.ok && result.envelope.items[0]?.payload.equals(binary)).toBe(true);
  });

  it("accepts an envelope with no items and an item with an empty payload", () => {
    expect(parse("{}\n")).toEqual({ ok: true, envelope: { headers: {}, items: [] } });
    const result = parse('{}\n{"type":"unknown_future_thing"}\n');
    expect(result.ok && result.envelope.items[0]?.payload.length).toBe(0);
  });

  it("rejects what Relay rejects", () => {
    expect(parse("")).toEqual({ ok: false, detail: "empty envelope" });
    expect(parse("[1]\n")).toMatchObject({
      ok: false,
      detail: expect.stringMatching(/envelope header/),
    });
    expect(parse('{}\n{"length":2}\nab\n')).toMatchObject({
      ok: false,
      detail: expect.stringMatching(/no type/),
    });
    expect(parse('{}\n{"type":"event","length":10}\nshort')).toMatchObject({
      ok: false,
      detail: expect.stringMatching(/ends first/),
    });
    expect(parse('{}\n{"type":"event","length":2}\nabc\n')).toMatchObject({
      ok: false,
      detail: expect.stringMatching(/longer than/),
    });
    expect(parse('{}\n{"type":"event","length":-1}\n')).toMatchObject({
      ok: false,
      detail: expect.stringMatching(/invalid length/),
    });
  });

  it("refuses a header line past its size or depth before parsing it, fast", () => {
    const started = performance.now();
    const bomb = Buffer.alloc(20 * 1024 * 1024, "[");
    expect(parse(bomb)).toMatchObject({ ok: false, detail: /envelope header is longer than/ });
    const deep = `${"[".repeat(MAX_HEADER_DEPTH + 1)}${"]".repeat(MAX_HEADER_DEPTH + 1)}`;
    expect(parse(`{"a":${deep}}\n`)).toMatchObject({ ok: false, detail: /nests deeper/ });
    const itemBomb = Buffer.concat([Buffer.from("{}\n"), bomb]);
    expect(parse(itemBomb)).toMatchObject({ ok: false, detail: /item header at byte 3 is longer/ });
    expect(parse(`{}\n{"type":"event","x":${deep}}\n{}\n`)).toMatchObject({
      ok: false,
      detail: /item header at byte 3 nests deeper/,
    });
    expect(performance.now() - started).toBeLessThan(500);
    const long = `{"x":"${"a".repeat(MAX_HEADER_LINE_BYTES)}"}\n`;
    expect(parse(long)).toMatchObject({ ok: false });
  });

  it("refuses more items than an envelope may carry", () => {
    const items = '{"type":"session"}\n{}\n'.repeat(MAX_ENVELOPE_ITEMS + 1);
    expect(parse(`{}\n${items}`)).toMatchObject({ ok: false, detail: /more than/ });
  });
});

describe("parseEnvelopeHeader", () => {
  it("parses one header line, bounded like the envelope parser", () => {
    expect(parseEnvelopeHeader(Buffer.from('{"dsn":"x"}'))).toEqual({
      ok: true,
      headers: { dsn: "x" },
    });
    expect(parseEnvelopeHeader(Buffer.from("[1]"))).toMatchObject({ ok: false });
    expect(parseEnvelopeHeader(Buffer.alloc(MAX_HEADER_LINE_BYTES + 1, " "))).toMatchObject({
      ok: false,
      detail: /longer than/,
    });
  });
});

/** Feeds `body` to a framing check in pieces cut at `cuts`; returns its first problem. */
function framingProblem(body: Buffer, cuts: number[]): string | null {
  const check = new EnvelopeFramingCheck();
  let at = 0;
  for (const cut of [
    ...cuts.map((c) => c % (body.length + 1)).sort((a, b) => a - b),
    body.length,
  ]) {
    if (cut < at) continue;
    const problem = check.push(body.subarray(at, cut));
    if (problem) return problem;
    at = cut;
  }
  return null;
}

describe("EnvelopeFramingCheck", () => {
  const pieces = [
    '{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc"}\n',
    '{"type":"event"}\n{"message":"x"}\n',
    '{"type":"attachment","length":5}\nab\ncd\n',
    '{"type":"attachment","length":2}\nabc\n',
    '{"type":"session","length":0}\n\n',
    '{"length":2}\nab\n',
    '{"type":"x","length":-1}\n',
    '{"type":"x","length":"7"}\n',
    "not json\n",
    "\n\n",
    '{"type":"a"}',
    `{"type":"deep","x":${"[".repeat(40)}${"]".repeat(40)}}\n`,
    `{"type":"${"l".repeat(MAX_HEADER_LINE_BYTES)}"}\n`,
  ];

  it("finds while streaming only the problems parseEnvelope reports, with its messages", () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom(...pieces), { minLength: 1, maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 6 }),
        (parts, cuts) => {
          const body = Buffer.from(parts.join(""));
          const problem = framingProblem(body, cuts);
          if (problem !== null) expect(parse(body)).toEqual({ ok: false, detail: problem });
          expect(framingProblem(body, [])).toBe(problem);
        },
      ),
      { seed: 0x5e1ce, numRuns: 500 },
    );
  });

  it("refuses an item header bomb after one header's worth of bytes", () => {
    const check = new EnvelopeFramingCheck();
    expect(check.push(Buffer.from("{}\n"))).toBeNull();
    const chunk = Buffer.alloc(16 * 1024, "[");
    let problem: string | null = null;
    let fed = 0;
    while (!problem && fed < 10 * 1024 * 1024) {
      problem = check.push(chunk);
      fed += chunk.length;
    }
    expect(problem).toBe(`item header at byte 3 is longer than ${MAX_HEADER_LINE_BYTES} bytes`);
    expect(fed).toBeLessThanOrEqual(MAX_HEADER_LINE_BYTES + chunk.length);
  });
});
