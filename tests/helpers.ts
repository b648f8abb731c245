/**
 * Test helpers: unique names, a child Deno process runner, and `ipcTest`, a `Deno.test` that
 * fails when the test leaves IPC objects, descriptors, mappings or child processes behind.
 *
 * @module
 */

import { MessageQueue } from "../mod.ts";

/** An environment variable, or `undefined` (also without --allow-env). */
function env(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

/**
 * Which IPC objects the leak checks judge. `"namespace"`: the suite runs in a private IPC and
 * mount namespace (tests/leftovers.ts makes one when it runs as root), so every object in it is
 * the suite's. `"suite"`: the namespace is the machine's, shared with other programs, so only
 * what this suite made counts: names that carry this run's prefix or the pid of the process
 * that checks (JSDoc examples name objects after `Deno.pid`), and System V segments that
 * process created; other objects are not judged. Set by tests/leftovers.ts through
 * PIPC_TEST_SCOPE; a test file run on its own judges in the `"suite"` scope.
 */
export const LEAK_SCOPE: "namespace" | "suite" = env("PIPC_TEST_SCOPE") === "namespace"
  ? "namespace"
  : "suite";

const sharedRunTag = env("PIPC_TEST_RUN");
/** This run's tag: tests/leftovers.ts hands one to the whole suite through PIPC_TEST_RUN. */
const runTag = sharedRunTag && /^[0-9a-z]{1,16}$/.test(sharedRunTag)
  ? sharedRunTag
  : crypto.randomUUID().slice(0, 8);
/** Tells apart the names of test modules that share a run's tag. */
const moduleTag = crypto.randomUUID().slice(0, 4);
let counter = 0;

/** The prefix of every name and temporary file the tests make. */
export const TEST_PREFIX = `pipc-test-${runTag}`;

/** A POSIX IPC name no other test or run uses: "/pipc-test-<run>-<module>-<label>-<n>". */
export function uniqueName(label: string): string {
  return `/${TEST_PREFIX}-${moduleTag}-${label}-${++counter}`;
}

/** A temporary file whose name carries the test prefix, so the leak check can see its maps. */
export function tempFile(contents: Uint8Array | string = ""): string {
  const path = Deno.makeTempFileSync({ prefix: `${TEST_PREFIX}-` });
  if (typeof contents === "string") Deno.writeTextFileSync(path, contents);
  else Deno.writeFileSync(path, contents);
  return path;
}

/** Whether something is at `path` (a file in /dev/shm, typically). */
export function pathExists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Whether a POSIX message queue has `name` (it is opened and closed again to tell). */
export function queueExists(name: string): boolean {
  try {
    MessageQueue.open(name).close();
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
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

/** An IPC object of this IPC namespace, as the leak checks see it. */
export interface IpcObject {
  /** How the checks name it: "/dev/shm/NAME", "/dev/mqueue/NAME", "sysv shm key K id I". */
  key: string;
  /** The name in /dev/shm or the mqueue file system. */
  name?: string;
  /** The pid that created it, where the kernel says (System V segments). */
  creator?: number;
}

/** The IPC objects of this IPC namespace: /dev/shm, message queues, System V objects. */
export function ipcObjects(): IpcObject[] {
  const objects: IpcObject[] = [];
  for (const name of list("/dev/shm")) objects.push({ key: `/dev/shm/${name}`, name });
  for (const name of messageQueues()) objects.push({ key: `/dev/mqueue/${name}`, name });
  for (const kind of ["shm", "sem", "msg"]) {
    const rows = readText(`/proc/sysvipc/${kind}`).split("\n").slice(1);
    for (const row of rows) {
      const [key, id, , , cpid] = row.trim().split(/\s+/);
      if (!id) continue;
      const creator = kind === "shm" ? Number(cpid) : undefined;
      objects.push({ key: `sysv ${kind} key ${key} id ${id}`, creator });
    }
  }
  return objects;
}

/**
 * Whether this suite made `object`, as far as can be told in a shared namespace: its name
 * carries {@linkcode TEST_PREFIX} or one of `pids` as a whole number, or one of `pids` created
 * it. System V semaphore sets and queues record no creator, so they are never known to be ours.
 */
export function madeBySuite(object: IpcObject, pids: readonly number[]): boolean {
  const { name, creator } = object;
  if (name !== undefined) {
    return name.includes(TEST_PREFIX) ||
      pids.some((pid) => new RegExp(`(^|\\D)${pid}(\\D|$)`).test(name));
  }
  return creator !== undefined && pids.includes(creator);
}

/**
 * Everything a test could leak, as one set of strings: IPC objects (all of this namespace's, or
 * in the `"suite"` scope only those {@linkcode madeBySuite} by this process or its children),
 * this process's descriptors and mappings of shared memory or test files, and its child
 * processes.
 */
export function ipcSnapshot(scope: "namespace" | "suite" = LEAK_SCOPE): Set<string> {
  const seen = new Set<string>();
  const children: string[] = [];
  for (const task of list("/proc/self/task")) {
    const listed = readText(`/proc/self/task/${task}/children`).trim();
    if (listed) children.push(...listed.split(/\s+/));
  }
  const pids = [Deno.pid, ...children.map(Number)];
  for (const object of ipcObjects()) {
    if (scope === "namespace" || madeBySuite(object, pids)) seen.add(object.key);
  }
  for (const fd of list("/proc/self/fd")) {
    const target = readLink(`/proc/self/fd/${fd}`);
    if (target && isIpcPath(target)) seen.add(`fd ${fd} -> ${target}`);
  }
  for (const line of readText("/proc/self/maps").split("\n")) {
    if (isIpcPath(line)) seen.add(`mapping ${line}`);
  }
  for (const pid of children) seen.add(`child process ${pid}`);
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
 * The POSIX message queues of this IPC namespace. From PIPC_TEST_MQUEUE, where
 * tests/leftovers.ts mounted the private namespace's queues; from /dev/mqueue when it is mounted;
 * otherwise through a private mount in a new mount namespace (`unshare --mount`, as root), which
 * changes nothing on the machine; otherwise none can be listed, and the check says so once.
 */
function messageQueues(): string[] {
  const mounted = env("PIPC_TEST_MQUEUE"); // where tests/leftovers.ts mounted the namespace's
  if (mounted) return list(mounted);
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

/**
 * Why this process cannot make PID namespaces (not root, no util-linux `unshare`), or `""` when
 * it can: probed once, for tests that run a child in a new PID namespace.
 */
export const pidNamespaces: string = (() => {
  if (Deno.uid() !== 0) return "not root";
  try {
    const probe = new Deno.Command("unshare", {
      args: ["--pid", "--fork", "--mount-proc", "true"],
      stdout: "null",
      stderr: "null",
    }).outputSync();
    return probe.success ? "" : "unshare --pid --fork --mount-proc fails here";
  } catch {
    return "no unshare";
  }
})();

/** A pid that no process of this namespace has now, nor the next one. */
export function pidNotInUse(): number {
  for (let pid = 20_000 + Math.floor(Math.random() * 10_000);; pid++) {
    if (!processExists(pid) && !processExists(pid + 1)) return pid;
  }
}

/** Whether /proc shows a process `pid` in this namespace. */
export function processExists(pid: number): boolean {
  try {
    return Deno.statSync(`/proc/${pid}`).isDirectory;
  } catch {
    return false;
  }
}

/** A child started by {@linkcode spawnReady}: the process, and what it prints after "ready". */
export interface ReadyChild {
  readonly process: Deno.ChildProcess;
  /** Reads the child's stdout to its end (after "ready"), and its status. */
  finish(): Promise<{ stdout: string; stderr: string; status: Deno.CommandStatus }>;
  /** Kills the child with SIGKILL (unless it has exited) and waits for it. */
  kill(): Promise<void>;
}

/**
 * Starts a Deno program with {@linkcode spawnDeno} and waits until it prints a line "ready"
 * (20 s at most: then it is killed and this throws).
 */
export async function spawnReady(
  script: string,
  args: string[],
  options: RunDenoOptions = {},
): Promise<ReadyChild> {
  const running = spawnDeno(script, args, options);
  const reader = running.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const timer = setTimeout(() => running.kill("SIGKILL"), 20_000);
  let said = "";
  try {
    while (!said.includes("ready\n")) {
      const { value, done } = await reader.read();
      if (done) {
        const stderr = await new Response(running.stderr).text();
        throw new Error(`the child ended before it was ready: "${said}" ${stderr}`);
      }
      said += value;
    }
  } finally {
    clearTimeout(timer);
  }
  let rest = said.slice(said.indexOf("ready\n") + 6);
  return {
    process: running,
    async finish() {
      const [stderr] = await Promise.all([
        new Response(running.stderr).text(),
        (async () => {
          for (let r = await reader.read(); !r.done; r = await reader.read()) rest += r.value;
        })(),
      ]);
      return { stdout: rest, stderr, status: await running.status };
    },
    async kill() {
      try {
        running.kill("SIGKILL");
      } catch {
        // it has exited already
      }
      await reader.cancel();
      await running.stderr.cancel();
      await running.status;
    },
  };
}

/** Whether this process may mount a tmpfs in a new mount namespace (root, with unshare). */
export function canMountTmpfs(): boolean {
  try {
    return new Deno.Command("unshare", {
      args: ["--mount", "sh", "-c", "mount -t tmpfs -o size=64k none /mnt"],
      stdout: "null",
      stderr: "null",
    }).outputSync().success;
  } catch {
    return false;
  }
}

/**
 * Runs a fixture as a child in a private mount namespace whose /dev/shm is a tmpfs of `size`
 * (say "1M"), after the shell commands `setup` there; killed after 60 s. Needs root and unshare
 * (see {@linkcode canMountTmpfs}); nothing changes outside the namespace.
 */
export async function runInSmallShm(
  script: string,
  size: string,
  options: { setup?: string; flags?: string[] } = {},
): Promise<ChildOutput> {
  const flags = (options.flags ?? ["--allow-ffi"]).join(" ");
  const shell = `mount -t tmpfs -o size=${size} none /dev/shm && ${options.setup ?? "true"} && ` +
    `exec "$0" run --no-prompt ${flags} "$1"`;
  const output = await new Deno.Command("unshare", {
    args: ["--mount", "sh", "-c", shell, Deno.execPath(), script],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(60_000),
  }).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    signal: output.signal,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}
