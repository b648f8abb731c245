/**
 * The property suite (npm:fast-check): every exported function, constructor, method and
 * accessor of the public entry points gets hostile values at every C type edge, and the only
 * outcomes allowed are success, a TypeError or RangeError that names the argument, or a typed
 * error carrying code/errno/syscall: never an engine error, a crash, a hang, or a wrong action
 * (kill-like calls are watched through sentinel processes; descriptor calls through the fd
 * table; `ipc` through objects it must keep).
 *
 * Each group of tests/property/ runs in a child Deno process (tests/fixtures/property_run.ts),
 * as root in a PID, IPC and mount namespace of its own, so that a crash fails only that group
 * and prints the case that caused it, and a wrong kill(-1) or `ipc gc` could reach nothing
 * outside. The seed is printed; set PIPC_PROPERTY_SEED to replay a run, PIPC_PROPERTY_SCALE to
 * run more or fewer cases, PIPC_PROPERTY_GROUPS (comma-separated) to run some groups only.
 *
 * @module
 */

import assert from "node:assert/strict";
import { publicSurface } from "./property/surface.ts";
import { COVERED, GROUP_FILES } from "./property/coverage.ts";
import { fixture, ipcTest, TEST_PREFIX } from "./helpers.ts";

const GROUPS = GROUP_FILES;

function env(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

const SEED = env("PIPC_PROPERTY_SEED") !== undefined
  ? Number(env("PIPC_PROPERTY_SEED")) | 0
  : (Math.random() * 2 ** 31) | 0;
const SCALE = Number(env("PIPC_PROPERTY_SCALE") ?? "1");
const SELECTED = env("PIPC_PROPERTY_GROUPS")?.split(",") ?? GROUPS;
/** The least a full run must generate, in cases. */
const MINIMUM_CASES = 100_000;
/** How long one group may take before its child is killed and the group fails as hung. */
const GROUP_TIMEOUT_MS = 120_000;

/** Whether a PID, IPC and mount namespace can be made here (root with util-linux unshare). */
function canContain(): boolean {
  try {
    return new Deno.Command("unshare", {
      args: ["--pid", "--fork", "--mount-proc", "--ipc", "--propagation", "private", "true"],
      stdout: "null",
      stderr: "null",
    }).outputSync().success;
  } catch {
    return false;
  }
}

const CONTAINED = env("PIPC_PROPERTY_CONTAINED") !== "0" && canContain();
const totals = { cases: 0, ms: 0, groups: 0 };

console.log(
  `property suite: seed ${SEED} (PIPC_PROPERTY_SEED=${SEED} to replay), scale ${SCALE}, ` +
    (CONTAINED
      ? "each group in a PID, IPC and mount namespace of its own"
      : "not contained (not root, or no unshare): kill-like calls send harmless signals only"),
);

interface GroupReport {
  group: string;
  results: { name: string; cases: number; ms: number; failure?: string }[];
  leaked: string[];
}

/** Runs one group in a child, contained where possible; returns its report, or throws. */
async function runGroup(group: string): Promise<GroupReport> {
  // Not named with TEST_PREFIX: the child maps it, and the leak checks judge such mappings.
  const trace = Deno.makeTempFileSync({ prefix: "pipc-property-trace-" });
  const queues = Deno.makeTempDirSync({ prefix: `${TEST_PREFIX}-mqueue-` });
  const deno = [
    Deno.execPath(),
    "run",
    "--allow-all",
    "--v8-flags=--expose-gc",
    fixture("property_run.ts"),
    group,
  ];
  // sh stays pid 1 of the namespace (deno is not: init ignores signals, which would hide a
  // stray one aimed at the runner); /dev/shm and the mqueue file system are the namespace's.
  const script = "mount -t tmpfs -o mode=1777 pipc-property /dev/shm && " +
    'mount -t mqueue none "$PIPC_TEST_MQUEUE" && "$@"';
  const command = CONTAINED
    ? [
      "unshare",
      "--pid",
      "--fork",
      "--kill-child",
      "--mount-proc",
      "--ipc",
      "--propagation",
      "private",
      "sh",
      "-c",
      script,
      "sh",
      ...deno,
    ]
    : deno;
  const child = new Deno.Command(command[0]!, {
    args: command.slice(1),
    env: {
      PIPC_PROPERTY_SEED: String(SEED),
      PIPC_PROPERTY_SCALE: String(SCALE),
      PIPC_PROPERTY_TRACE: trace,
      PIPC_PROPERTY_CONTAINED: CONTAINED ? "1" : "0",
      PIPC_TEST_RUN: TEST_PREFIX.replace("pipc-test-", ""),
      ...(CONTAINED ? { PIPC_TEST_SCOPE: "namespace", PIPC_TEST_MQUEUE: queues } : {}),
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), GROUP_TIMEOUT_MS);
  try {
    const output = await child.output();
    const stdout = new TextDecoder().decode(output.stdout);
    const stderr = new TextDecoder().decode(output.stderr);
    if (output.code !== 0 || output.signal) {
      let last = "";
      try {
        last = Deno.readTextFileSync(trace).split("\0")[0]!;
      } catch {
        // no case ran
      }
      throw new Error(
        `the ${group} group's child ended with code ${output.code}, signal ${output.signal}` +
          ` (seed ${SEED}); the case it was running:\n  ${last}\n${stderr.slice(-3000)}`,
      );
    }
    const line = stdout.split("\n").find((text) => text.startsWith("PROPERTY-REPORT "));
    if (!line) throw new Error(`the ${group} group's child printed no report:\n${stdout}${stderr}`);
    const report = JSON.parse(line.slice("PROPERTY-REPORT ".length)) as GroupReport;
    // Anything printed as uncaught (a finalizer's error, after the report) fails the group too.
    const rest = `${stdout.replace(line, "")}\n${stderr}`;
    if (/Uncaught|panicked/i.test(rest)) report.leaked.push(`printed: ${rest.trim()}`);
    return report;
  } finally {
    clearTimeout(timer);
    Deno.removeSync(trace);
    Deno.removeSync(queues, { recursive: true });
  }
}

Deno.test("every public export has property coverage", async () => {
  const surface = await publicSurface();
  const missing = [...surface.keys()].filter((member) => !COVERED.has(member));
  assert.deepEqual(missing, [], `members of ${[...surface.keys()].length} with no property`);
  const stale = [...COVERED].filter((member) => !surface.has(member));
  assert.deepEqual(stale, [], "properties name members that are not exported");
});

for (const group of GROUPS) {
  ipcTest(
    `property group "${group}": only success, TypeError, RangeError or typed errors`,
    async () => {
      const report = await runGroup(group);
      totals.groups++;
      const failures: string[] = [];
      for (const result of report.results) {
        totals.cases += result.cases;
        totals.ms += result.ms;
        if (result.failure) failures.push(`${result.name}\n${result.failure}`);
      }
      if (report.leaked.length) failures.push(`left behind:\n  ${report.leaked.join("\n  ")}`);
      const cases = report.results.reduce((sum, result) => sum + result.cases, 0);
      console.log(`  ${group}: ${cases} cases`);
      assert.equal(failures.length, 0, `(seed ${SEED})\n\n${failures.join("\n\n")}`);
    },
    { ignore: !SELECTED.includes(group) },
  );
}

Deno.test("property suite totals", () => {
  console.log(`property suite: ${totals.cases} cases in ${totals.groups} groups (seed ${SEED})`);
  if (SCALE >= 1 && totals.groups === GROUPS.length) {
    assert.ok(totals.cases >= MINIMUM_CASES, `only ${totals.cases} cases`);
  }
});
