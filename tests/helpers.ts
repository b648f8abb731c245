/**
 * Test helpers: unique names, a child Deno process runner, and `ipcTest`, a `Deno.test` that
 * fails when the test leaves IPC objects, descriptors, mappings or child processes behind.
 *
 * @module
 */

const runTag = crypto.randomUUID().slice(0, 8);
let counter = 0;

/** The prefix of every name and temporary file the tests make. */
export const TEST_PREFIX = `pipc-test-${runTag}`;

/** A POSIX IPC name no other test or run uses: "/pipc-test-<run>-<label>-<n>". */
export function uniqueName(label: string): string {
  return `/${TEST_PREFIX}-${label}-${++counter}`;
}

/** A temporary file whose name carries the test prefix, so the leak check can see its maps. */
export function tempFile(contents: Uint8Array | string = ""): string {
  const path = Deno.makeTempFileSync({ prefix: `${TEST_PREFIX}-` });
  if (typeof contents === "string") Deno.writeTextFileSync(path, contents);
  else Deno.writeFileSync(path, contents);
  return path;
}

/** Runs `fn`, which must throw, and returns what it threw. */
export function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error("expected the call to throw");
}

/** What a child process printed and how it ended. */
export interface ChildOutput {
  code: number;
  signal: Deno.Signal | null;
  stdout: string;
  stderr: string;
}

/** Options of {@linkcode runDeno}. */
export interface RunDenoOptions {
  /** Deno flags for the child, permissions and V8 flags. Default `["--allow-ffi"]`. */
  flags?: string[];
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** Text for the child's stdin. */
  stdin?: string;
  /**
   * Kill the child with SIGKILL if it has not exited after this many ms, so that a hang fails
   * the test (the output's `signal` is then `"SIGKILL"`) instead of hanging it. Default: none.
   */
  timeout?: number;
}

/** The absolute path of a fixture program in tests/fixtures. */
export function fixture(name: string): string {
  return new URL(`./fixtures/${name}`, import.meta.url).pathname;
}

/** Runs a Deno program as a real child process and collects what it printed. */
export async function runDeno(
  script: string,
  args: string[] = [],
  options: RunDenoOptions = {},
): Promise<ChildOutput> {
  const child = spawnDeno(script, args, options);
  const timer = options.timeout === undefined
    ? undefined
    : setTimeout(() => child.kill("SIGKILL"), options.timeout);
  try {
    if (options.stdin !== undefined) {
      const writer = child.stdin.getWriter();
      await writer.write(new TextEncoder().encode(options.stdin));
      await writer.close();
    }
    return await collect(child);
  } finally {
    clearTimeout(timer);
  }
}

/** Starts a Deno program as a child process with piped stdio; collect it with `collect`. */
export function spawnDeno(
  script: string,
  args: string[] = [],
  options: RunDenoOptions = {},
): Deno.ChildProcess {
  const flags = options.flags ?? ["--allow-ffi"];
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", ...flags, script, ...args],
    env: options.env,
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** Waits for a child started by `spawnDeno` and decodes its output. */
export async function collect(child: Deno.ChildProcess): Promise<ChildOutput> {
  const { code, signal, stdout, stderr } = await child.output();
  const decoder = new TextDecoder();
  return { code, signal, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
}

/** Throws with the child's stderr when it did not exit 0. */
export function assertSucceeded(output: ChildOutput): ChildOutput {
  if (output.code !== 0) {
    throw new Error(`child exited with ${output.code}:\n${output.stderr}${output.stdout}`);
  }
  return output;
}

/**
 * Everything a test could leak, as one set of strings: names in /dev/shm and /dev/mqueue,
 * System V objects, this process's descriptors and mappings of shared memory or test files,
 * and its child processes.
 */
export function ipcSnapshot(): Set<string> {
  const seen = new Set<string>();
  for (const entry of list("/dev/shm")) seen.add(`/dev/shm/${entry}`);
  for (const entry of messageQueues()) seen.add(`/dev/mqueue/${entry}`);
  for (const kind of ["shm", "sem", "msg"]) {
    const rows = readText(`/proc/sysvipc/${kind}`).split("\n").slice(1);
    for (const row of rows) {
      const [key, id] = row.trim().split(/\s+/);
      if (id) seen.add(`sysv ${kind} key ${key} id ${id}`);
    }
  }
  for (const fd of list("/proc/self/fd")) {
    const target = readLink(`/proc/self/fd/${fd}`);
    if (target && isIpcPath(target)) seen.add(`fd ${fd} -> ${target}`);
  }
  for (const line of readText("/proc/self/maps").split("\n")) {
    if (isIpcPath(line)) seen.add(`mapping ${line}`);
  }
  for (const task of list("/proc/self/task")) {
    const children = readText(`/proc/self/task/${task}/children`).trim();
    for (const pid of children ? children.split(/\s+/) : []) seen.add(`child process ${pid}`);
  }
  return seen;
}

/**
 * A `Deno.test` that also fails when the test leaves anything of {@linkcode ipcSnapshot}
 * behind. Deno's own resource and op sanitizers stay on.
 */
export function ipcTest(
  name: string,
  fn: (t: Deno.TestContext) => void | Promise<void>,
  options: Omit<Deno.TestDefinition, "name" | "fn"> = {},
): void {
  Deno.test({
    name,
    ...options,
    async fn(t) {
      const before = ipcSnapshot();
      await fn(t);
      const leaked = [...ipcSnapshot()].filter((entry) => !before.has(entry));
      if (leaked.length > 0) {
        throw new Error(`The test left behind:\n  ${leaked.join("\n  ")}`);
      }
    },
  });
}

let mqueueView: "mounted" | "unshare" | "none" | undefined;

/**
 * The POSIX message queues of this IPC namespace. From /dev/mqueue when it is mounted;
 * otherwise through a private mount in a new mount namespace (`unshare --mount`, as root), which
 * changes nothing on the machine; otherwise none can be listed, and the check says so once.
 */
function messageQueues(): string[] {
  if (mqueueView === undefined) {
    mqueueView = list("/dev/mqueue").length > 0 || isMqueueMount("/dev/mqueue")
      ? "mounted"
      : "unshare";
  }
  if (mqueueView === "mounted") return list("/dev/mqueue");
  if (mqueueView === "none") return [];
  try {
    const { success, stdout } = new Deno.Command("unshare", {
      args: ["--mount", "sh", "-c", "mount -t mqueue none /tmp && ls -A /tmp"],
      stderr: "null",
    }).outputSync();
    if (success) return new TextDecoder().decode(stdout).split("\n").filter(Boolean);
  } catch {
    // no unshare
  }
  mqueueView = "none";
  console.warn("(leak check: message queues cannot be listed here: no /dev/mqueue, no unshare)");
  return [];
}

function isMqueueMount(path: string): boolean {
  return readText("/proc/self/mounts").split("\n").some((line) => line.split(" ")[1] === path);
}

function isIpcPath(text: string): boolean {
  return text.includes("/dev/shm/") || text.includes("/memfd:") || text.includes(TEST_PREFIX);
}

function list(dir: string): string[] {
  try {
    return [...Deno.readDirSync(dir)].map((entry) => entry.name);
  } catch {
    return [];
  }
}

function readText(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return "";
  }
}

function readLink(path: string): string | undefined {
  try {
    return Deno.readLinkSync(path);
  } catch {
    return undefined;
  }
}
