// Test support: Debian's Chromium driven by playwright-core (no browser download), headless, with
// a fresh profile per launch that is removed on close. Outside CI a missing /usr/bin/chromium skips
// the test naming the package (`chromium`); in CI nothing skips.

import { access, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { hasCommand } from "./tools.js";

export const CHROMIUM = "/usr/bin/chromium";

const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** The `skip` option of a browser test. */
export function skipUnlessChromium(): false | string {
  if (process.env.CI === "true") return false;
  return hasCommand(CHROMIUM) ? false : "needs Chromium: apt-get install chromium";
}

/** A running headless Chromium with one page. */
export interface TestBrowser {
  readonly context: BrowserContext;
  readonly page: Page;
  close(): Promise<void>;
}

/** Options of `launchBrowser`. */
export interface LaunchOptions {
  /** `prefers-color-scheme`. Default light. */
  colorScheme?: "light" | "dark";
  /** Viewport size. Default 1100×720. */
  viewport?: { width: number; height: number };
}

/** Starts Chromium with a fresh --user-data-dir (playwright passes it) and opens a page. */
export async function launchBrowser(options: LaunchOptions = {}): Promise<TestBrowser> {
  await access(CHROMIUM);
  const profile = await mkdtemp(join(tmpdir(), "berth-chromium-"));
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ARGS,
      colorScheme: options.colorScheme ?? "light",
      viewport: options.viewport ?? { width: 1100, height: 720 },
      timeout: 120_000,
    });
  } catch (error) {
    await rm(profile, { recursive: true, force: true });
    throw error;
  }
  context.setDefaultTimeout(30_000);
  const page = context.pages()[0] ?? (await context.newPage());
  return {
    context,
    page,
    close: async () => {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}
