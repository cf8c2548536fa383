// Test support: scrape a Prometheus endpoint and read its samples. A small reader of the text
// format (0.0.4): `# HELP`/`# TYPE` lines and samples `name{label="value",...} value`, with the
// escapes of label values. The npm parser parse-prometheus-text-format was tried and merges every
// labelled histogram into one series, losing the labels; Debian's promtool checks the format
// strictly in metrics.test.ts.

import assert from "node:assert/strict";

/** One sample line. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** What a scrape returned: the samples and each family's type. */
export interface Scrape {
  samples: Sample[];
  types: Map<string, string>;
}

const sampleLine = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$/;
const labelPair = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(?:,|$)/y;

function parseLabels(text: string, line: string): Record<string, string> {
  const labels: Record<string, string> = {};
  labelPair.lastIndex = 0;
  while (labelPair.lastIndex < text.length) {
    const match = labelPair.exec(text);
    assert.ok(match, `bad labels in ${JSON.stringify(line)}`);
    labels[match[1]!] = match[2]!.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
  }
  return labels;
}

/** Parses the text format; fails the test on a line that is not in it. */
export function parseMetrics(text: string): Scrape {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    if (line.startsWith("#")) {
      const type = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line);
      if (type !== null) types.set(type[1]!, type[2]!);
      continue;
    }
    const match = sampleLine.exec(line);
    assert.ok(match, `not a sample: ${JSON.stringify(line)}`);
    // Go's ParseFloat, which Prometheus reads with, takes NaN and Inf in any case (prom-client
    // writes "Nan" for an empty event-loop histogram).
    const text = match[3]!.toLowerCase();
    const value =
      text === "nan"
        ? NaN
        : text === "+inf" || text === "inf"
          ? Infinity
          : text === "-inf"
            ? -Infinity
            : Number(match[3]);
    assert.ok(!Number.isNaN(value) || text === "nan", `bad value in ${JSON.stringify(line)}`);
    samples.push({ name: match[1]!, labels: parseLabels(match[2] ?? "", line), value });
  }
  return { samples, types };
}

/** Scrapes `url` and parses the text; fails on a non-200 answer. */
export async function scrapeMetrics(url: string): Promise<Scrape> {
  const response = await fetch(url);
  assert.equal(response.status, 200, `GET ${url}`);
  return parseMetrics(await response.text());
}

/**
 * The sum of the samples called `name` (a histogram's `x_count` or `x_sum` too) whose labels
 * include `labels`; 0 when none does.
 */
export function sampleValue(
  scrape: Scrape,
  name: string,
  labels: Record<string, string> = {},
): number {
  let total = 0;
  for (const sample of scrape.samples) {
    if (sample.name !== name) continue;
    if (Object.entries(labels).every(([key, value]) => sample.labels[key] === value)) {
      total += sample.value;
    }
  }
  return total;
}
