/**
 * Sentinel processes for kill-like properties: each blocks every signal it can and sits in a
 * process group of its own, so a signal sent to it stays pending where /proc shows it (ShdPnd,
 * SigPnd), and SIGKILL or SIGSTOP change its state. A property names one sentinel as the
 * intended target and asserts that no other was touched.
 *
 * @module
 */

/** Blocks signals 1-64, leads a new process group, says "ready", then sleeps. */
const SCRIPT = "use POSIX; sigprocmask(SIG_BLOCK, POSIX::SigSet->new(1..31, 34..64)); " +
  'setpgid(0, 0); $| = 1; print "ready\\n"; sleep 100000;';

interface Sentinel {
  pid: number;
  child: Deno.ChildProcess;
}

async function start(): Promise<Sentinel> {
  const child = new Deno.Command("perl", {
    args: ["-e", SCRIPT],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.getReader();
  const { value } = await reader.read();
  reader.releaseLock();
  await child.stdout.cancel();
  if (!new TextDecoder().decode(value).startsWith("ready")) {
    throw new Error("a sentinel did not start");
  }
  // It printed "ready" just before sleep(): wait (at most 2 s) until it sleeps.
  for (let i = 0; i < 400 && touched(child.pid); i++) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  if (touched(child.pid)) throw new Error(`a sentinel is not asleep: ${touched(child.pid)}`);
  return { pid: child.pid, child };
}

/** Whether /proc shows that `pid` got a signal: pending, stopped, running, dying or gone. */
function touched(pid: number): string | undefined {
  let status: string;
  try {
    status = Deno.readTextFileSync(`/proc/${pid}/status`);
  } catch {
    return "gone";
  }
  const field = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, "m").exec(status)?.[1] ?? "";
  const state = field("State");
  const pending = [field("ShdPnd"), field("SigPnd")].filter((mask) => /[1-9a-f]/.test(mask));
  if (pending.length > 0) return `signal pending (${pending.join(", ")})`;
  if (!state.startsWith("S")) return `state ${state}`;
  return undefined;
}

/** A few sentinels, one of which a case may name as its target. */
export class Sentinels {
  readonly #all: Sentinel[];

  private constructor(all: Sentinel[]) {
    this.#all = all;
  }

  /** Starts `count` sentinels. */
  static async start(count = 3): Promise<Sentinels> {
    const all: Sentinel[] = [];
    for (let i = 0; i < count; i++) all.push(await start());
    return new Sentinels(all);
  }

  /** The pid of sentinel `index` (which leads its own process group: pgid = pid). */
  pid(index: number): number {
    return this.#all[index]!.pid;
  }

  /** Every sentinel that shows a signal: "pid 123: signal pending (…)". */
  touched(): { index: number; why: string }[] {
    const found: { index: number; why: string }[] = [];
    this.#all.forEach(({ pid }, index) => {
      const why = touched(pid);
      if (why) found.push({ index, why });
    });
    return found;
  }

  /** Replaces sentinel `index` (after it was the target) with a fresh one. */
  async replace(index: number): Promise<void> {
    const old = this.#all[index]!;
    try {
      old.child.kill("SIGKILL");
    } catch {
      // gone already
    }
    await old.child.status;
    this.#all[index] = await start();
  }

  /** Replaces every touched sentinel; returns what was touched. */
  async renew(): Promise<{ index: number; why: string }[]> {
    const found = this.touched();
    for (const { index } of found) await this.replace(index);
    return found;
  }

  /** Ends every sentinel. */
  async close(): Promise<void> {
    for (const { child } of this.#all) {
      try {
        child.kill("SIGKILL");
      } catch {
        // gone already
      }
      await child.status;
    }
  }
}

/** Whether this child runs in a PID namespace of its own (set by tests/property_test.ts). */
export const CONTAINED: boolean = (() => {
  try {
    return Deno.env.get("PIPC_PROPERTY_CONTAINED") === "1";
  } catch {
    return false;
  }
})();

/**
 * The signals a kill-like property may send: contained, every hostile value; otherwise only
 * signals that every process ignores by default (a stray one would harm nothing), and 0.
 */
export const HARMLESS_SIGNALS: readonly (string | number)[] = ["SIGWINCH", 28, "SIGURG", 23, 0];
