import { describe, expect, it } from "vitest";
import { parseIssueQuery } from "./issue-routes.ts";

describe("parseIssueQuery", () => {
  it("shows unresolved issues without a query and all issues with an empty one", () => {
    expect(parseIssueQuery(undefined)).toEqual({ status: "unresolved", text: null });
    expect(parseIssueQuery("")).toEqual({ status: null, text: null });
  });

  it("reads is: filters, the muted alias, and free text", () => {
    expect(parseIssueQuery("is:resolved")).toEqual({ status: "resolved", text: null });
    expect(parseIssueQuery("is:muted  timeout error")).toEqual({
      status: "ignored",
      text: "timeout error",
    });
  });
});
