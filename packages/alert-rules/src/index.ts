export * from "./evaluate.ts";
export * from "./notification.ts";
export * from "./rule-shapes.ts";
