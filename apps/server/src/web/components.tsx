/** Small pieces the pages share: times, levels, sparklines, CSRF fields. */

/** The exact time as shown on hover: `2026-12-01 12:34:56 UTC`. */
export function exactTime(date: Date): string {
  return `${date.toISOString().slice(0, 19).replace("T", " ")} UTC`;
}

/** `3 hours ago` / `in 2 days` of `date` seen at `now`, in whole units. */
export function relativeTime(date: Date, now: Date = new Date()): string {
  let seconds = Math.round((now.getTime() - date.getTime()) / 1000);
  const future = seconds < 0;
  seconds = Math.abs(seconds);
  const units: [string, number][] = [
    ["year", 31_536_000],
    ["month", 2_592_000],
    ["day", 86_400],
    ["hour", 3_600],
    ["minute", 60],
  ];
  for (const [unit, size] of units) {
    const n = Math.floor(seconds / size);
    if (n >= 1) {
      const text = `${n} ${unit}${n === 1 ? "" : "s"}`;
      return future ? `in ${text}` : `${text} ago`;
    }
  }
  return "just now";
}

/** A `<time>` showing the relative time, with the exact time as its title (hover). */
export function RelativeTime({ date }: { date: Date | null }) {
  if (!date) return <span class="muted">never</span>;
  return (
    <time datetime={date.toISOString()} title={exactTime(date)} data-relative="">
      {relativeTime(date)}
    </time>
  );
}

export function Level({ level }: { level: string }) {
  return <span class={`level level-${level}`}>{level}</span>;
}

/** Counts with thousands separators (`12,345`). */
export function formatCount(n: number): string {
  return n.toLocaleString("en-US");
}

/**
 * 24 bars, one per hour, oldest first, as an SVG image whose accessible
 * name says the total; each bar's `<title>` gives its hour's count.
 */
export function Sparkline({ counts }: { counts: number[] }) {
  const max = Math.max(1, ...counts);
  const total = counts.reduce((a, b) => a + b, 0);
  const width = 96;
  const height = 24;
  const bar = width / counts.length;
  return (
    <svg
      class="spark"
      role="img"
      aria-label={`${formatCount(total)} events in the last 24 hours`}
      width={width}
      height={height}
      viewBox={`0 0 ${width} ${height}`}
    >
      {counts.map((n, i) => {
        const h = n === 0 ? 0 : Math.max(1.5, (n / max) * height);
        return (
          <rect
            x={(i * bar + 0.5).toFixed(1)}
            y={(height - h).toFixed(1)}
            width={(bar - 1).toFixed(1)}
            height={h.toFixed(1)}
          >
            <title>{`${23 - i === 0 ? "last hour" : `${23 - i} hours before`}: ${n}`}</title>
          </rect>
        );
      })}
    </svg>
  );
}

/** The hidden field `requireCsrf` checks on every state-changing form. */
export function CsrfField({ token }: { token: string }) {
  return <input type="hidden" name="csrf" value={token} />;
}

/** A share bar (0..1) as SVG, so no inline style is needed (the CSP forbids them). */
export function ShareBar({ share }: { share: number }) {
  const pct = `${Math.round(Math.min(1, Math.max(0, share)) * 100)}%`;
  return (
    <svg class="bar-svg" width="100%" height="6" aria-hidden="true">
      <rect width="100%" height="6" rx="3" fill="#f4f3f7" />
      <rect width={pct} height="6" rx="3" fill="#8a74e8" />
    </svg>
  );
}

/** A notice above a page's content: a status, or an alert when `error`; nothing without a message. */
export function Notice({ message, error }: { message: string | undefined; error?: boolean }) {
  if (!message) return null;
  return (
    <p class={error ? "notice error" : "notice"} role={error ? "alert" : "status"}>
      {message}
    </p>
  );
}
