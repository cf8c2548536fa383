// Small pieces the pages share: paging, a line to copy, errors and loading states.

import { useState } from "preact/hooks";
import { LoginRequired, RegistryError } from "./client.js";
import { href, shortDigest } from "./format.js";

/** Previous/next paging with the position, as a labelled navigation landmark. */
export function Pager(props: {
  label: string;
  position: string;
  hasPrevious: boolean;
  hasNext: boolean;
  onPrevious: () => void;
  onNext: () => void;
}) {
  if (!props.hasPrevious && !props.hasNext) return null;
  return (
    <nav class="pager" aria-label={props.label}>
      <button type="button" onClick={props.onPrevious} disabled={!props.hasPrevious}>
        ← Previous
      </button>
      <span>{props.position}</span>
      <button type="button" onClick={props.onNext} disabled={!props.hasNext}>
        Next →
      </button>
    </nav>
  );
}

/** A command to copy, such as `docker pull ...`: selectable text and a Copy button. */
export function CopyLine(props: { label: string; value: string }) {
  const [copied, setCopied] = useState(false);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(props.value);
      setCopied(true);
      setTimeout(() => setCopied(false), 2000);
    } catch {
      // No clipboard (plain HTTP on another host): the text stays selectable.
    }
  };
  return (
    <div class="copy-line">
      <code aria-label={props.label}>{props.value}</code>
      <button type="button" onClick={() => void copy()} aria-label={`Copy: ${props.label}`}>
        {copied ? "Copied" : "Copy"}
      </button>
    </div>
  );
}

/** A digest, shortened, with the whole of it for the pointer and screen readers. */
export function Digest(props: { value: string }) {
  return (
    <code class="digest" title={props.value} aria-label={props.value}>
      {shortDigest(props.value)}
    </code>
  );
}

export function Loading(props: { what: string }) {
  return (
    <p role="status" class="muted">
      Loading {props.what}…
    </p>
  );
}

/** An error as the user can act on it: log in, or what the registry said. */
export function ErrorNote(props: { error: unknown; back: string }) {
  const { error } = props;
  if (error instanceof LoginRequired) {
    return (
      <div role="alert" class="error">
        <p>
          {error.message}. <a href={href.login(props.back)}>Log in</a>
        </p>
      </div>
    );
  }
  const message =
    error instanceof RegistryError
      ? `${error.message}${error.code !== undefined ? ` (${error.code})` : ""}`
      : error instanceof Error
        ? error.message
        : String(error);
  return (
    <div role="alert" class="error">
      <p>{message}</p>
    </div>
  );
}
