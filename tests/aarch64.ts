/**
 * `deno task test:aarch64`: runs the tests that exercise layouts and system calls on aarch64,
 * under qemu-user, on any Linux machine.
 *
 * - Fetches the aarch64 Deno from npm (`@deno/linux-arm64-glibc`, the version .ci/run installs)
 *   into .cache/aarch64/ (git ignores it), once.
 * - Runs `tests/leftovers.ts deno test` with it under `qemu-aarch64 -L /usr/aarch64-linux-gnu`,
 *   as `deno task test` does natively, on {@linkcode FILES}.
 * - The tests start child Deno processes (`Deno.execPath()`, an aarch64 binary), which need the
 *   kernel to hand aarch64 programs to qemu: it registers qemu-aarch64 with binfmt_misc in
 *   private user, mount and PID namespaces (Linux 6.7 and later give each user namespace its
 *   own binfmt_misc), which changes nothing on the machine; where they cannot be made, it uses
 *   a registration the machine already has (qemu-user-binfmt).
 * - Runs the files in PIPC_AARCH64_JOBS groups at once (default 2), each group a `deno test` of
 *   its own in namespaces of its own, balanced by how long each file took ({@linkcode WEIGHTS});
 *   each output line starts with its group's number.
 * - Fails a run that outlives PIPC_AARCH64_TIMEOUT seconds (default 900; it took 7.3 min on a
 *   busy 2-core machine), killing every process of it.
 * - Prints every test it skips, with the reason ({@linkcode SKIPS}).
 *
 * Anything missing fails the run with what to install. Usage:
 * `deno task test:aarch64 [test files…]` (default {@linkcode FILES}).
 *
 * @module
 */

const ROOT = new URL("../", import.meta.url).pathname;
const CACHE = `${ROOT}.cache/aarch64`;
const TRIPLE = "aarch64-linux-gnu";
const SYSROOT = `/usr/${TRIPLE}`;
const QEMU = "qemu-aarch64";
const DEBIAN_PACKAGES =
  "qemu-user libc6-arm64-cross libgcc-s1-arm64-cross gcc-aarch64-linux-gnu libc6-dev-arm64-cross";

/**
 * The test files that run: every one that exercises struct layouts, constants or system calls.
 * Left out, as they test nothing that depends on the architecture and would only add minutes
 * of emulated start-up: cli (the inspector's output), examples, errors (errno mapping, checked
 * by the layout check), helpers, ffi_guard (the JavaScript validation layer), libc (paths),
 * kill (argument validation); and select and unix, whose structs and constants (futex_waitv,
 * msghdr, cmsghdr, sockaddr_un, ucred, SCM_RIGHTS...) the layout check compares with aarch64's
 * glibc headers: their tests added 128 s of emulated start-ups and took CI past 15 minutes
 * ({@linkcode ON_REQUEST}: `deno task test:aarch64 tests/select_test.ts tests/unix_test.ts`).
 * The channel's tests went there too when a slower day took CI to 16.7 minutes: a channel's
 * ring is Atomics on shared memory (qemu-user keeps the host's ordering), and what it asks of the
 * kernel (process-shared sem_t, futex waits, memfd, mmap of the ring twice) runs on aarch64 in the
 * semaphore, sync, shm and mmap tests.
 */
export const FILES = [
  "tests/layout_test.ts",
  "tests/shm_test.ts",
  "tests/mmap_test.ts",
  "tests/semaphore_test.ts",
  "tests/mqueue_test.ts",
  "tests/sysv_test.ts",
  "tests/sync_test.ts",
  "tests/spawn_test.ts",
  "tests/signal_test.ts",
  "tests/pipe_test.ts",
  "tests/fd_test.ts",
];

/**
 * How many `deno test` processes run at once (PIPC_AARCH64_JOBS, default 2: the emulation
 * keeps a core busy per process, and CI's machine has two).
 */
const JOBS = Number(Deno.env.get("PIPC_AARCH64_JOBS") ?? 2);
if (!Number.isInteger(JOBS) || JOBS < 1) {
  throw new RangeError("PIPC_AARCH64_JOBS must be a whole number of processes >= 1");
}

/**
 * Seconds each file's tests took under qemu in one CI run (on a slow day), to balance the groups;
 * a file not listed counts as 30.
 */
const WEIGHTS: Record<string, number> = {
  "tests/shm_test.ts": 188,
  "tests/sync_test.ts": 106,
  "tests/semaphore_test.ts": 78,
  "tests/mqueue_test.ts": 71,
  "tests/spawn_test.ts": 69,
  "tests/sysv_test.ts": 66,
  "tests/mmap_test.ts": 48,
  "tests/signal_test.ts": 23,
  "tests/pipe_test.ts": 16,
  "tests/fd_test.ts": 6,
  "tests/layout_test.ts": 3,
};

/** `files` in at most `jobs` groups of about the same weight: the heaviest first, each to the lightest group. */
export function splitByWeight(files: readonly string[], jobs: number): string[][] {
  const groups = Array.from({ length: Math.min(jobs, files.length) }, () => ({
    files: [] as string[],
    weight: 0,
  }));
  const weight = (file: string) => WEIGHTS[file] ?? 30;
  for (const file of [...files].sort((a, b) => weight(b) - weight(a))) {
    const lightest = groups.reduce((a, b) => (b.weight < a.weight ? b : a));
    lightest.files.push(file);
    lightest.weight += weight(file);
  }
  return groups.map((group) => group.files);
}

/** Copies `stream` to `out` line by line, each line after `label`. */
async function relay(
  stream: ReadableStream<Uint8Array>,
  label: string,
  out: { writeSync(bytes: Uint8Array): number },
): Promise<void> {
  const encoder = new TextEncoder();
  let pending = "";
  for await (const text of stream.pipeThrough(new TextDecoderStream())) {
    const lines = (pending + text).split("\n");
    pending = lines.pop()!;
    for (const line of lines) writeAll(out, encoder.encode(`${label}${line}\n`));
  }
  if (pending) writeAll(out, encoder.encode(`${label}${pending}\n`));
}

function writeAll(out: { writeSync(bytes: Uint8Array): number }, bytes: Uint8Array): void {
  for (let at = 0; at < bytes.length;) at += out.writeSync(bytes.subarray(at));
}

/** How long the whole run may take, in seconds (PIPC_AARCH64_TIMEOUT, default 900). */
const TIMEOUT = Number(Deno.env.get("PIPC_AARCH64_TIMEOUT") ?? 900);
if (!(TIMEOUT > 0)) throw new RangeError("PIPC_AARCH64_TIMEOUT must be a number of seconds > 0");

/** Why the unix tests that count descriptors received past `maxFds` cannot run under qemu. */
const QEMU_REASON =
  "qemu-user receives into a host control buffer larger than the guest's and copies " +
  "only the descriptors that fit: those beyond maxFds stay open in the process, unreported " +
  "(no MSG_CTRUNC), where the kernel closes them. The test counts them; sendmsg, recvmsg " +
  "and the cmsghdr layout run in the other unix tests";

/** Test files that pass under emulation but run only when named on the command line. */
export const ON_REQUEST = ["tests/select_test.ts", "tests/unix_test.ts", "tests/channel_test.ts"];

/**
 * Tests that do not run under emulation, by exact name, each with the reason: volume tests,
 * each up to minutes under qemu, whose system calls and layouts smaller tests in the run
 * exercise on aarch64 too; a bound on time that counts a child's emulated start-up; a count
 * of what qemu adds to the process.
 */
export const SKIPS: readonly { test: string; reason: string }[] = [
  {
    test:
      "a child streams 1,000,000 messages of 1 B to 64 KiB: each arrives once, in order, intact",
    reason: "volume, 4 min under qemu; the ring across processes runs in '3 sender processes and " +
      "2 receiver processes…', 'back-pressure…' and 'close() ends the peer's iteration…'",
  },
  {
    test: "4 producers and 2 consumers move 100,000 messages: each arrives once, intact",
    reason: "volume, 80 s under qemu; mq_send/mq_receive and mq_attr across processes run in " +
      "'a consumer started after a mix of sends receives them in kernel order' and others",
  },
  {
    test: "a bounded buffer with a Mutex and two Conditions moves 100,000 items between processes",
    reason: "volume, 46 s under qemu; Condition waits run in 'timeouts and aborts end waits " +
      "promptly…', futex waits and wakes across processes in 'a Barrier with 4 processes…'",
  },
  {
    test: "4 processes × 10,000 increments under one Mutex: the total is exact",
    reason: "volume, 40 s under qemu; the robust Mutex across processes runs in 'a holder killed " +
      "with SIGKILL…', futex waits and wakes across processes in 'a Barrier with 4 processes…'",
  },
  {
    test: "two processes each add 1,000,000 with Atomics.add to one cell: the total is exact",
    reason: "volume, 36 s under qemu, and it tests V8's Atomics rather than a layout or a " +
      "syscall: qemu-user runs aarch64 atomics with the x86_64 host's memory ordering anyway",
  },
  {
    test: "openFifo() leaves no thread blocked: the process exits after a timeout, an abort, " +
      "or the FIFO's removal or replacement",
    reason: "12 child processes, 50 s under qemu; the FIFO calls run in the other openFifo " +
      "tests, and what it adds (no worker thread left blocked) does not depend on the arch",
  },
  {
    test: "mapFile() needs --allow-read, and --allow-write for a shared writable mapping",
    reason: "permission logic in JavaScript, the same on every architecture, 23 s of child " +
      "processes under qemu; mmap of files runs in every other mmap test",
  },
  {
    test: "receiveInto: a child's 20,000 messages land in one reused buffer, each intact, in order",
    reason: "volume, 30 s under qemu; mq_receive into a caller's buffer runs in 'receiveInto " +
      "forms: priorities, try when empty, timeouts, abort, close'",
  },
  {
    test:
      "spawn() checks --allow-run against the program the child would run, as Deno.Command does",
    reason: "permission logic in JavaScript, the same on every architecture, 26 s of child " +
      "processes under qemu; posix_spawn runs in every other spawn test",
  },
  {
    test: "a child that starts a wait and aborts it exits by itself",
    reason: "a timing bound: it allows 5 s, starting the child Deno included, which takes 3-6 s " +
      "under qemu (it failed at 6 s); aborts of semaphore waits run in the select and channel " +
      "tests. It could run with a longer bound if the test read a time scale under emulation",
  },
  {
    test: "an abort ends a pending wait within 250 ms with the signal's reason",
    reason: "a timing bound: 250 ms from the abort, which took 4.4 s once under qemu on a busy " +
      "machine (the first abort of a wait in the process); channel waits' aborts run in the " +
      "channel tests. It could run with a longer bound if the test read a time scale under " +
      "emulation",
  },
  {
    test: "200 channels dropped without close() give back their mappings, fds and names to the " +
      "garbage collector; a transferred view stays safe",
    reason: "it counts new lines of /proc/self/maps and new fds, and under qemu-user these " +
      "include the emulator's own (translation buffers, heap, two sockets: none shared memory " +
      "or a memfd, checked by listing them), so the counts cannot judge the library there",
  },
  ...[
    "a segment dropped without close() is released by the garbage collector",
    "semaphores dropped without close() release their sem_t, lock and name on GC",
    "queues dropped without close() release their descriptor and owned name on GC",
    "pipe ends dropped without close() release their descriptors on GC",
  ].map((test) => ({
    test,
    reason: "the garbage collector's safety net (V8's FinalizationRegistry, the same on every " +
      "architecture) in children that force collections, 17-20 s each under qemu; the calls " +
      "it makes (close, munmap, sem_destroy, mq_close, shm_unlink) run on aarch64 in the close " +
      "tests",
  })),
  ...[
    "MSG_CTRUNC: descriptors beyond maxFds are closed, the rest owned by the message",
    "10,000 descriptors sent to a running process, some truncated or unclaimed: its fd count " +
    "returns to where it started",
    "a peer SIGKILLed while it sends descriptors: every message read to the end, no " +
    "descriptor left",
  ].map((test) => ({
    test,
    reason: QEMU_REASON,
  })),
];

/** The Deno version .ci/run installs, so that both architectures run the same Deno. */
function denoVersion(): string {
  const ci = Deno.readTextFileSync(`${ROOT}.ci/run`);
  const version = /npm install -g deno@(\d+\.\d+\.\d+)/.exec(ci)?.[1];
  if (!version) throw new Error("cannot find the Deno version in .ci/run (npm install -g deno@…)");
  return version;
}

function fail(message: string): never {
  console.error(`test:aarch64: ${message}`);
  Deno.exit(1);
}

function run(command: string, args: string[], options: Deno.CommandOptions = {}) {
  try {
    return new Deno.Command(command, { stdout: "piped", stderr: "piped", ...options, args })
      .outputSync();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** The aarch64 Deno binary of `version`, fetched from npm into the cache when missing. */
function aarch64Deno(version: string): string {
  const binary = `${CACHE}/deno-${version}/deno`;
  if (exists(binary)) return binary;
  console.log(`test:aarch64: fetching @deno/linux-arm64-glibc@${version} from npm`);
  const work = Deno.makeTempDirSync({ prefix: "pipc-aarch64-deno-" });
  try {
    const pack = run("npm", [
      "pack",
      "--silent",
      `@deno/linux-arm64-glibc@${version}`,
      "--pack-destination",
      work,
    ]);
    if (!pack) fail("npm is missing: it fetches the aarch64 Deno (apt-get install npm)");
    if (!pack.success) {
      fail(`npm pack @deno/linux-arm64-glibc@${version} failed:\n${decode(pack.stderr)}`);
    }
    const tarball = `${work}/${decode(pack.stdout).trim().split("\n").pop()}`;
    const untar = run("tar", ["-xzf", tarball, "-C", work, "package/deno"]);
    if (!untar?.success) fail(`cannot extract deno from ${tarball}`);
    Deno.mkdirSync(`${CACHE}/deno-${version}`, { recursive: true });
    Deno.chmodSync(`${work}/package/deno`, 0o755);
    Deno.renameSync(`${work}/package/deno`, binary);
    return binary;
  } finally {
    Deno.removeSync(work, { recursive: true });
  }
}

/** What is missing to build and run aarch64 code here, with the packages that bring it. */
function missingTools(): string[] {
  const missing: string[] = [];
  if (!run(QEMU, ["--version"])?.success) missing.push(`${QEMU} (qemu-user)`);
  if (!exists(`${SYSROOT}/lib/ld-linux-aarch64.so.1`)) {
    missing.push(`the aarch64 glibc in ${SYSROOT} (libc6-arm64-cross)`);
  }
  if (!exists(`${SYSROOT}/lib/libgcc_s.so.1`)) {
    missing.push(`the aarch64 libgcc_s in ${SYSROOT} (libgcc-s1-arm64-cross)`);
  }
  if (!run(`${TRIPLE}-gcc`, ["--version"])?.success) {
    missing.push(`${TRIPLE}-gcc, for the layout check (gcc-aarch64-linux-gnu)`);
  }
  if (!exists(`${SYSROOT}/include/stdio.h`)) {
    missing.push(`the aarch64 C headers, for the layout check (libc6-dev-arm64-cross)`);
  }
  return missing;
}

/** binfmt_misc's format for ELF 64-bit little-endian aarch64 executables, as Debian's. */
const BINFMT_RULE = [
  "",
  "pipc-qemu-aarch64",
  "M",
  "",
  "\\x7f\\x45\\x4c\\x46\\x02\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00\\xb7\\x00",
  "\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\x00\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfe\\xff\\xff\\xff",
  "", // the interpreter, filled in
  "F",
];

/**
 * The command prefix that runs `argv` where aarch64 children run under qemu: a private user
 * and mount namespace with its own binfmt_misc, or none when the machine has a registration.
 */
function binfmtPrefix(qemuPath: string): { prefix: string[]; how: string } {
  const rule = BINFMT_RULE.with(6, qemuPath).join(":");
  const script = [
    "set -e",
    "mount -t binfmt_misc pipc-binfmt /proc/sys/fs/binfmt_misc",
    `printf '%s' '${rule}' > /proc/sys/fs/binfmt_misc/register`,
    // Not exec: the suite is not the namespace's init, which signals treat apart.
    '"$@"',
  ].join("\n");
  // A PID namespace too, so that killing it on a timeout ends every process of the run.
  const unshare = [
    "unshare",
    "--user",
    "--map-root-user",
    "--mount",
    "--pid",
    "--fork",
    "--kill-child",
    "--mount-proc",
    "sh",
    "-c",
    script,
    "sh",
  ];
  const probe = run(unshare[0], [...unshare.slice(1), "true"]);
  if (probe?.success) {
    return {
      prefix: unshare,
      how: "qemu-aarch64 registered with binfmt_misc in private user, mount and PID namespaces",
    };
  }
  const registered = ["qemu-aarch64", "pipc-qemu-aarch64"].find((name) => {
    try {
      return Deno.readTextFileSync(`/proc/sys/fs/binfmt_misc/${name}`).startsWith("enabled");
    } catch {
      return false;
    }
  });
  if (registered) {
    return { prefix: [], how: `the machine's binfmt_misc registration ${registered}` };
  }
  fail(
    "the tests start aarch64 child processes, which need binfmt_misc to hand them to qemu, " +
      "and neither way works here: a private user namespace with its own binfmt_misc " +
      `(unshare --user --mount; Linux 6.7+) failed${
        probe ? `: ${decode(probe.stderr).trim()}` : " (no unshare: apt-get install util-linux)"
      }, and the machine has no qemu-aarch64 registration (apt-get install qemu-user-binfmt ` +
      "where the host allows it)",
  );
}

function decode(bytes: Uint8Array): string {
  return new TextDecoder().decode(bytes);
}

if (import.meta.main) {
  const started = performance.now();
  const files = Deno.args.length > 0 ? Deno.args : FILES;
  const missing = missingTools();
  if (missing.length > 0) {
    fail(`missing: ${missing.join("; ")}.\nInstall: apt-get install ${DEBIAN_PACKAGES}`);
  }
  // A skip that names no test any more is a stale entry: fail rather than believe it.
  const sources = [...new Set([...FILES, ...ON_REQUEST, ...files])]
    .map((file) => Deno.readTextFileSync(`${ROOT}${file}`)).join("\n");
  for (const { test } of SKIPS) {
    if (!sources.includes(JSON.stringify(test))) {
      fail(`SKIPS names "${test}", which no test has: update tests/aarch64.ts`);
    }
  }
  const version = denoVersion();
  const deno = aarch64Deno(version);
  const qemuPath = decode(run("sh", ["-c", `command -v ${QEMU}`])!.stdout).trim();
  const { prefix, how } = binfmtPrefix(qemuPath);
  console.log(
    `test:aarch64: Deno ${version} for aarch64 under ${QEMU}; child processes through ${how}`,
  );
  console.log(`test:aarch64: test files: ${files.join(" ")}`);
  if (SKIPS.length === 0) console.log("test:aarch64: no test is skipped");
  for (const { test, reason } of SKIPS) console.log(`test:aarch64: SKIPPED "${test}": ${reason}`);

  // The files run in JOBS groups at once, each a `deno test` of its own under qemu (a process
  // each, in namespaces of its own: signals, descriptors and IPC objects never meet).
  const groups = splitByWeight(files, JOBS);
  console.log(`test:aarch64: ${groups.length} groups at once (PIPC_AARCH64_JOBS)`);
  const children = groups.map((group, index) => {
    // Type-checking does not depend on the architecture (CI runs `deno check` natively), and
    // under emulation it takes two minutes: --no-check.
    const test = ["test", "--allow-all", "--no-check", "--preload", "tests/aarch64_skip.ts"];
    const argv = [...prefix, qemuPath, "-L", SYSROOT, deno, "run", "--allow-all"];
    argv.push("tests/leftovers.ts", deno, ...test, ...group);
    const child = new Deno.Command(argv[0]!, {
      args: argv.slice(1),
      cwd: ROOT,
      env: { QEMU_LD_PREFIX: SYSROOT },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const label = groups.length > 1 ? `[${index + 1}/${groups.length}] ` : "";
    const relayed = Promise.all([
      relay(child.stdout, label, Deno.stdout),
      relay(child.stderr, label, Deno.stderr),
    ]);
    return { child, relayed };
  });
  // A hang must fail the run, not CI's clock: the whole run has TIMEOUT seconds.
  const timer = setTimeout(() => {
    console.error(`test:aarch64: still running after ${TIMEOUT} s (PIPC_AARCH64_TIMEOUT): killed`);
    for (const { child } of children) child.kill("SIGKILL");
  }, TIMEOUT * 1000);
  const statuses = await Promise.all(
    children.map(async ({ child, relayed }) => {
      const status = await child.status;
      await relayed;
      return status;
    }),
  );
  clearTimeout(timer);
  const failed = statuses.find((status) => !status.success);
  const success = failed === undefined;
  const code = failed?.code ?? 0;
  const seconds = ((performance.now() - started) / 1000).toFixed(0);
  const skipped = SKIPS.length
    ? `; skipped, with the reasons above: ${SKIPS.map((s) => `"${s.test}"`).join(", ")}`
    : "";
  console.log(`test:aarch64: ${success ? "passed" : "FAILED"} in ${seconds} s${skipped}`);
  Deno.exit(success ? 0 : code || 1);
}
