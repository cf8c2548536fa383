// The sections of the manifest page that load on their own: an image's config (fetched as a blob),
// annotations and labels, and the referrers tree (signatures, SBOMs, attestations grouped by
// artifactType, and what refers to them in turn).

import { useEffect, useState } from "preact/hooks";
import type { RegistryClient } from "./client.js";
import { formatBytes, formatPlatform, formatTime, href, type Platform } from "./format.js";
import { Digest, ErrorNote, Loading } from "./parts.js";

const IMAGE_CONFIGS = [
  "application/vnd.oci.image.config.v1+json",
  "application/vnd.docker.container.image.v1+json",
];
/** Image configs larger than this are not fetched. */
const MAX_CONFIG = 1024 * 1024;
/** How deep the referrers tree goes (a signature of an SBOM of the image is depth 2). */
const MAX_REFERRER_DEPTH = 3;

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  platform?: Platform;
  annotations?: Record<string, string>;
}

export interface ManifestDocument {
  mediaType?: string;
  artifactType?: string;
  config?: Descriptor;
  layers?: Descriptor[];
  manifests?: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

interface ImageConfig {
  created?: string;
  os?: string;
  architecture?: string;
  variant?: string;
  config?: {
    Entrypoint?: string[] | null;
    Cmd?: string[] | null;
    Labels?: Record<string, string> | null;
  };
}

export function Annotations(props: { title: string; values: Record<string, string> | undefined }) {
  const entries = Object.entries(props.values ?? {});
  if (entries.length === 0) return null;
  return (
    <table class="pairs">
      <caption>{props.title}</caption>
      <tbody>
        {entries.map(([key, value]) => (
          <tr key={key}>
            <th scope="row">{key}</th>
            <td>{value}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function ConfigSection(props: { client: RegistryClient; name: string; config: Descriptor }) {
  const { client, name, config } = props;
  const [state, setState] = useState<{ value?: ImageConfig; error?: unknown }>({});
  const readable = IMAGE_CONFIGS.includes(config.mediaType) && config.size <= MAX_CONFIG;
  useEffect(() => {
    if (!readable) return;
    let stopped = false;
    client.json<ImageConfig>(`/v2/${name}/blobs/${config.digest}`).then(
      ({ body }) => !stopped && setState({ value: body }),
      (error: unknown) => !stopped && setState({ error }),
    );
    return () => {
      stopped = true;
    };
  }, [client, name, config.digest, readable]);
  const value = state.value;
  return (
    <section aria-labelledby="config-title">
      <h2 id="config-title">Config</h2>
      <dl class="facts">
        <dt>Media type</dt>
        <dd>{config.mediaType}</dd>
        <dt>Digest</dt>
        <dd>
          <code>{config.digest}</code>
        </dd>
        <dt>Size</dt>
        <dd>{formatBytes(config.size)}</dd>
        {value?.created !== undefined ? (
          <>
            <dt>Created</dt>
            <dd>
              <time dateTime={value.created}>{formatTime(value.created)}</time>
            </dd>
          </>
        ) : null}
        {value?.os !== undefined && value.architecture !== undefined ? (
          <>
            <dt>Platform</dt>
            <dd>
              {formatPlatform({
                os: value.os,
                architecture: value.architecture,
                variant: value.variant,
              })}
            </dd>
          </>
        ) : null}
        {value?.config?.Entrypoint ? (
          <>
            <dt>Entrypoint</dt>
            <dd>
              <code>{value.config.Entrypoint.join(" ")}</code>
            </dd>
          </>
        ) : null}
        {value?.config?.Cmd ? (
          <>
            <dt>Command</dt>
            <dd>
              <code>{value.config.Cmd.join(" ")}</code>
            </dd>
          </>
        ) : null}
      </dl>
      {state.error !== undefined ? <ErrorNote error={state.error} back={location.hash} /> : null}
      <Annotations title="Labels" values={value?.config?.Labels ?? undefined} />
    </section>
  );
}

/** The referrers of `digest`, grouped by artifactType, each with its own referrers below it. */
export function Referrers(props: {
  client: RegistryClient;
  name: string;
  digest: string;
  depth: number;
}) {
  const { client, name, digest, depth } = props;
  const [state, setState] = useState<{ list?: Descriptor[]; error?: unknown }>({});
  useEffect(() => {
    let stopped = false;
    client.json<{ manifests?: Descriptor[] }>(`/v2/${name}/referrers/${digest}`).then(
      ({ body }) => !stopped && setState({ list: body.manifests ?? [] }),
      (error: unknown) => !stopped && setState({ error }),
    );
    return () => {
      stopped = true;
    };
  }, [client, name, digest]);
  if (state.error !== undefined) return <ErrorNote error={state.error} back={location.hash} />;
  if (state.list === undefined) return depth === 1 ? <Loading what="referrers" /> : null;
  if (state.list.length === 0)
    return depth === 1 ? <p class="muted">Nothing refers to this manifest.</p> : null;
  const groups = new Map<string, Descriptor[]>();
  for (const referrer of state.list) {
    const type = referrer.artifactType ?? "(no artifact type)";
    groups.set(type, [...(groups.get(type) ?? []), referrer]);
  }
  return (
    <ul
      class="tree"
      aria-label={depth === 1 ? "Referrers by artifact type" : `Referrers of ${digest}`}
    >
      {[...groups].map(([type, referrers]) => (
        <li key={type}>
          <span class="artifact-type">{type}</span> <span class="muted">({referrers.length})</span>
          <ul>
            {referrers.map((referrer) => (
              <li key={referrer.digest}>
                <a
                  href={href.manifest(name, referrer.digest)}
                  aria-label={`${type} ${referrer.digest}`}
                >
                  <Digest value={referrer.digest} />
                </a>{" "}
                <span class="muted">{formatBytes(referrer.size)}</span>
                {referrer.annotations?.["org.opencontainers.image.created"] !== undefined ? (
                  <span class="muted">
                    {" "}
                    · {formatTime(referrer.annotations["org.opencontainers.image.created"])}
                  </span>
                ) : null}
                {depth < MAX_REFERRER_DEPTH ? (
                  <Referrers
                    client={client}
                    name={name}
                    digest={referrer.digest}
                    depth={depth + 1}
                  />
                ) : null}
              </li>
            ))}
          </ul>
        </li>
      ))}
    </ul>
  );
}
