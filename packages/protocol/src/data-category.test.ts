import { describe, expect, it } from "vitest";
import { dataCategoryOf, itemTypeLabel } from "./data-category.ts";

const prototypeNames = ["constructor", "toString", "__proto__", "hasOwnProperty", "valueOf"];

describe("dataCategoryOf", () => {
  it("maps known item types and counts anything else as unknown", () => {
    expect(dataCategoryOf("event")).toBe("error");
    expect(dataCategoryOf("sessions")).toBe("session");
    expect(dataCategoryOf("something_new")).toBe("unknown");
    for (const name of prototypeNames) expect(dataCategoryOf(name)).toBe("unknown");
  });
});

describe("itemTypeLabel", () => {
  it("keeps metric labels to a closed set", () => {
    expect(itemTypeLabel("attachment")).toBe("attachment");
    expect(itemTypeLabel("client_report")).toBe("client_report");
    expect(itemTypeLabel("x".repeat(100))).toBe("unknown");
    for (const name of prototypeNames) expect(itemTypeLabel(name)).toBe("unknown");
  });
});
