/**
 * Runs a command (the test suite) and fails if it left IPC objects behind: names in /dev/shm
 * or the mqueue file system, or System V objects, that were not there before it started. This
 * covers what `ipcTest` cannot: JSDoc and README examples, and anything a crashed test left.
 *
 * The check judges the suite only, never other programs that make IPC objects meanwhile:
 *
 * - As root, with util-linux `unshare`, the command runs in a private IPC and mount namespace:
 *   fresh System V objects and message queues, a fresh tmpfs on /dev/shm (as large as the
 *   machine's) and the namespace's mqueue file system mounted for the checks, with the
 *   machine's IPC limits (/proc/sys/fs/mqueue, kernel.shm*, msg*, sem) copied in. Everything in
 *   it is the suite's, and all of it vanishes with the namespace.
 * - Otherwise (or with PIPC_TEST_SCOPE=suite), the machine's namespace is shared, and only what
 *   the suite made is judged: names carrying this run's prefix (PIPC_TEST_RUN, handed to the
 *   suite) or the pid of the command's process, and System V segments that process created.
 *   Other new objects are listed as a warning, not judged.
 *
 * It prints which mode ran. Usage: deno run -A tests/leftovers.ts deno test -A --doc [args…]
 *
 * @module
 */

import { fileSystemSpace } from "../src/_proc.ts";
import { ipcObjects, LEAK_SCOPE, madeBySuite, TEST_PREFIX } from "./helpers.ts";

const [command, ...args] = Deno.args;
if (!command) throw new TypeError("usage: leftovers.ts COMMAND [ARGS…]");

/** The IPC limits an IPC namespace has its own copy of, which a new one resets. */
const IPC_LIMITS = [
  "fs/mqueue/msg_default",
  "fs/mqueue/msg_max",
  "fs/mqueue/msgsize_default",
  "fs/mqueue/msgsize_max",
  "fs/mqueue/queues_max",
  "kernel/shmmax",
  "kernel/shmall",
  "kernel/shmmni",
  "kernel/shm_rmid_forced",
  "kernel/msgmax",
  "kernel/msgmnb",
  "kernel/msgmni",
  "kernel/sem",
];

/** Why a private namespace cannot be made here, or `""` when it can. */
function namespaceUnavailable(): string {
  if (Deno.env.get("PIPC_TEST_SCOPE") === "suite") return "PIPC_TEST_SCOPE=suite";
  if (Deno.uid() !== 0) return "not root";
  try {
    const mounts = "mount -t tmpfs none /dev/shm && mount -t mqueue none /tmp";
    const probe = new Deno.Command("unshare", {
      args: ["--ipc", "--mount", "--propagation", "private", "sh", "-c", mounts],
      stdout: "null",
      stderr: "null",
    }).outputSync();
    return probe.success ? "" : "unshare --ipc --mount, or mounting tmpfs or mqueue, fails here";
  } catch {
    return "no unshare";
  }
}

/** Runs this program again, with the same arguments, in a private IPC and mount namespace. */
async function runInNamespace(): Promise<number> {
  const queues = Deno.makeTempDirSync({ prefix: `${TEST_PREFIX}-mqueue-` });
  try {
    const shmSize = fileSystemSpace("/dev/shm")?.total;
    const limits = IPC_LIMITS.flatMap((name) => {
      try {
        const value = Deno.readTextFileSync(`/proc/sys/${name}`).trim();
        if (!/^[\d\s]+$/.test(value)) return [];
        const warning = `leftovers.ts: could not copy /proc/sys/${name} into the namespace`;
        return [`echo '${value}' > /proc/sys/${name} || echo '${warning}' >&2`];
      } catch {
        return [];
      }
    });
    const script = [
      "set -e",
      `mount -t tmpfs -o mode=1777${shmSize ? `,size=${shmSize}` : ""} pipc-test-shm /dev/shm`,
      'mount -t mqueue pipc-test-mqueue "$PIPC_TEST_MQUEUE"',
      ...limits,
      'exec "$@"',
    ].join("\n");
    const inner = new Deno.Command("unshare", {
      args: [
        "--ipc",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        script,
        "sh",
        Deno.execPath(),
        "run",
        "--allow-all",
        new URL(import.meta.url).pathname,
        ...Deno.args,
      ],
      env: { PIPC_TEST_SCOPE: "namespace", PIPC_TEST_MQUEUE: queues },
      stdin: "inherit",
    });
    const status = await inner.spawn().status;
    return status.success ? 0 : status.code || 1;
  } finally {
    Deno.removeSync(queues);
  }
}

if (LEAK_SCOPE !== "namespace") {
  const why = namespaceUnavailable();
  if (!why) Deno.exit(await runInNamespace());
  console.log(
    `Leftover check: the machine's IPC namespace is shared (${why}), so only what this suite ` +
      `made is judged: names with "${TEST_PREFIX}" or the suite's pid, System V segments it ` +
      `created`,
  );
} else {
  console.log("Leftover check: the suite runs in a private IPC and mount namespace");
}

const before = new Set(ipcObjects().map((object) => object.key));
const child = new Deno.Command(command, {
  args,
  stdin: "inherit",
  env: { PIPC_TEST_RUN: TEST_PREFIX.slice("pipc-test-".length) },
}).spawn();
const status = await child.status;
const appeared = ipcObjects().filter((object) => !before.has(object.key));
const left = LEAK_SCOPE === "namespace"
  ? appeared
  : appeared.filter((object) => madeBySuite(object, [child.pid]));
const others = appeared.filter((object) => !left.includes(object));
if (others.length > 0) {
  console.warn(
    `Leftover check: not judged, as nothing shows this suite made them (another program may ` +
      `have):\n  ${others.map((object) => object.key).join("\n  ")}`,
  );
}
if (left.length > 0) {
  console.error(
    `The test suite left IPC objects behind:\n  ${left.map((object) => object.key).join("\n  ")}`,
  );
  Deno.exit(1);
}
console.log("Leftover check: no IPC object was left behind.");
Deno.exit(status.success ? 0 : status.code || 1);
