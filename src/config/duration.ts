// Go's duration syntax, as distribution's config.yml uses it: `168h`, `1h30m`, `10m`, `1.5s`,
// `250ms`. A sequence of decimal numbers, each with a unit (ns, us, µs, ms, s, m, h); `0` alone is
// zero. Durations are returned in milliseconds, the unit of Node's timers.

const unitMs: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

const component = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;

/** Milliseconds in a Go duration string, or undefined when `text` is not one. */
export function parseDuration(text: string): number | undefined {
  let rest = text.trim();
  let sign = 1;
  if (rest.startsWith("-") || rest.startsWith("+")) {
    sign = rest.startsWith("-") ? -1 : 1;
    rest = rest.slice(1);
  }
  if (rest === "0") return 0;
  if (rest === "") return undefined;
  let total = 0;
  component.lastIndex = 0;
  while (component.lastIndex < rest.length) {
    const start = component.lastIndex;
    const match = component.exec(rest);
    if (match === null || match.index !== start) return undefined;
    total += Number(match[1]) * unitMs[match[2]!]!;
  }
  return sign * total;
}

/** A duration in milliseconds written the way Go prints it, for log lines: `168h`, `1m30s`. */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0s";
  if (ms < 1000) return `${ms}ms`;
  let seconds = ms / 1000;
  const hours = Math.floor(seconds / 3600);
  seconds -= hours * 3600;
  const minutes = Math.floor(seconds / 60);
  seconds -= minutes * 60;
  return `${hours ? `${hours}h` : ""}${minutes ? `${minutes}m` : ""}${seconds ? `${+seconds.toFixed(3)}s` : ""}`;
}
