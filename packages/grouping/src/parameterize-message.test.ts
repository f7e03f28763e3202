import { describe, expect, it } from "vitest";
import { parameterizeMessage } from "./parameterize-message.ts";

describe("parameterizeMessage", () => {
  it.each([
    ["Error with order #1231", "Error with order #<int>"],
    ["user bob@example.com not found", "user <email> not found"],
    ["GET https://api.example.com/v1/x?y=1 failed", "GET <url> failed"],
    ["from 10.0.0.12 at 2026-11-23T12:00:00Z", "from <ip> at <date>"],
    ["id 9ec79c33-ec99-42ab-8353-589fcb2e04dc", "id <uuid>"],
    ["took 1.5s or 250ms", "took <duration> or <duration>"],
    ["ratio 0.75", "ratio <float>"],
    ["flag=true name='bob'", "flag=<bool> name=<quoted_str>"],
  ])("%s", (input, expected) => {
    expect(parameterizeMessage(input)).toBe(expected);
  });

  it("keeps the first two non-empty lines", () => {
    expect(parameterizeMessage("a\n\nb\nc")).toBe("a\nb...");
  });
});
