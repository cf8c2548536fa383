// Test support: run `skopeo` against a plain-HTTP loopback registry. TLS verification is off for
// both ends (containers/image then speaks HTTP to such a registry), and the signature policy is
// "insecure accept anything" so a machine without /etc/containers/policy.json works too.

import { execFile } from "node:child_process";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

/** Runs skopeo with `args` after the common flags; rejects with its stderr on failure. */
export async function skopeo(args: string[], timeoutMs = 60_000): Promise<string> {
  try {
    const { stdout } = await execFileAsync("skopeo", ["--insecure-policy", ...args], {
      timeout: timeoutMs,
      maxBuffer: 64 * 1024 * 1024,
    });
    return stdout;
  } catch (error) {
    const failure = error as { stderr?: string; message: string };
    throw new Error(`skopeo ${args.join(" ")} failed: ${failure.stderr || failure.message}`);
  }
}

/** Options of `skopeoCopy`. */
export interface SkopeoCopyOptions {
  /** `--all`: copy every image of an index, not only the one for this platform. Default true. */
  all?: boolean;
  /** `--preserve-digests`: fail rather than change a manifest. Default true. */
  preserveDigests?: boolean;
  /** `--format oci|v2s2`: convert manifests (implies a change of digests). */
  format?: "oci" | "v2s2";
  /** Extra arguments before source and destination. */
  extra?: string[];
}

/**
 * `skopeo copy source destination`, both image references in skopeo's transport syntax
 * (`docker://127.0.0.1:5000/repo:tag`, `oci:/dir:tag`, `dir:/dir`).
 */
export async function skopeoCopy(
  source: string,
  destination: string,
  options: SkopeoCopyOptions = {},
): Promise<string> {
  const args = ["copy", "--src-tls-verify=false", "--dest-tls-verify=false"];
  if (options.all ?? true) args.push("--all");
  if ((options.preserveDigests ?? true) && options.format === undefined) {
    args.push("--preserve-digests");
  }
  if (options.format !== undefined) args.push("--format", options.format);
  args.push(...(options.extra ?? []), source, destination);
  return skopeo(args);
}

/** `skopeo inspect --raw`: the manifest bytes exactly as the registry serves them. */
export async function skopeoInspectRaw(reference: string): Promise<Buffer> {
  const text = await skopeo(["inspect", "--raw", "--tls-verify=false", reference]);
  return Buffer.from(text, "utf8");
}

/** `skopeo inspect`: the parsed summary (Digest, Layers, Architecture, ...). */
export async function skopeoInspect(reference: string): Promise<Record<string, unknown>> {
  return JSON.parse(await skopeo(["inspect", "--tls-verify=false", reference])) as Record<
    string,
    unknown
  >;
}
