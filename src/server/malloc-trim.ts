// Gives the C heap's free pages back to the system. glibc's malloc keeps what a burst of requests
// freed: the buffers under its mmap threshold (MALLOC_MMAP_THRESHOLD_, cli/main.ts's first line),
// such as the 64 KiB each socket read takes and Node shrinks to what arrived, are carved from its
// heap, and a freed chunk goes back to the system only when it is at the heap's top. After a run of
// pushes, floods and pulls the heap held 22 MB of free chunks below live ones, RSS 113 MiB two
// seconds after the run (docs/performance.md, "Memory"). glibc's `malloc_trim(0)` returns every
// free page of every arena (madvise), whatever its place; nothing in Node calls it, so Berth does,
// through koffi (an optional dependency, the FFI the rados driver uses), when the idle collector
// has run. Without koffi, or on a C library without malloc_trim (musl), nothing is done.

/** The C library's trim, or undefined where it cannot be called. */
export type MallocTrim = () => void;

/**
 * Loads glibc's `malloc_trim` through koffi. Undefined, and a reason, when koffi is not installed,
 * the platform is not Linux, or the C library has no such function.
 */
export async function loadMallocTrim(): Promise<{ trim?: MallocTrim; reason?: string }> {
  if (process.platform !== "linux") return { reason: `not on Linux (${process.platform})` };
  let koffi;
  try {
    koffi = (await import("koffi")).default;
  } catch (error) {
    return { reason: `koffi is not installed (${(error as Error).message})` };
  }
  try {
    const trim = koffi.load("libc.so.6").func("int malloc_trim(size_t pad)") as (
      pad: number,
    ) => number;
    return { trim: () => void trim(0) };
  } catch (error) {
    return { reason: `no glibc malloc_trim (${(error as Error).message})` };
  }
}

/**
 * A trim for the idle collector that loads koffi on its first call (a registry that never served
 * a burst does not pay koffi's 3 MB and 50 ms) and trims once loaded; later calls trim at once.
 * `unavailable` hears, once, why there is no trim.
 */
export function lazyMallocTrim(unavailable: (reason: string) => void): () => void {
  let loaded: MallocTrim | undefined;
  let loading = false;
  return () => {
    if (loaded !== undefined) return loaded();
    if (loading) return;
    loading = true;
    void loadMallocTrim().then(({ trim, reason }) => {
      if (trim === undefined) return unavailable(reason ?? "unknown");
      loaded = trim;
      trim();
    });
  };
}
