/**
 * The layout check's machinery: what ffi/ exports on a given architecture, the probe items
 * generated from it, and building and running tests/layout/probe.c for that architecture with
 * its compiler and, when it is not this machine's, under qemu-user.
 *
 * Used by tests/layout_test.ts; a program of its own too, printing the probe's output for each
 * architecture named (default both): `deno run -A tests/layout/probe.ts aarch64`.
 *
 * @module
 */

/** The architectures ffi/ describes, with the toolchain that builds and runs code for each. */
export const TARGETS = {
  x86_64: {
    triple: "x86_64-linux-gnu",
    qemu: "qemu-x86_64",
    compilerPackage: "gcc-x86-64-linux-gnu libc6-dev-amd64-cross",
    libcPackage: "libc6-amd64-cross",
  },
  aarch64: {
    triple: "aarch64-linux-gnu",
    qemu: "qemu-aarch64",
    compilerPackage: "gcc-aarch64-linux-gnu libc6-dev-arm64-cross",
    libcPackage: "libc6-arm64-cross",
  },
} as const;

/** An architecture of {@linkcode TARGETS}. */
export type Arch = keyof typeof TARGETS;

/** The module namespaces of ffi/layout.ts and ffi/constants.ts, as evaluated for one arch. */
export interface Ffi {
  layout: Record<string, unknown>;
  constants: Record<string, unknown>;
}

/**
 * Exports of ffi/layout.ts that are tables of C type names and their sizes, rather than one
 * struct: each key is a type that C knows by that name.
 */
const TYPE_TABLES = new Set(["opaque"]);

/** Fields whose name in C differs from ffi/layout.ts's key: "<export>.<key>" -> C field. */
const C_FIELDS: Record<string, string> = {
  "ipc_perm.key": "__key", // glibc names it __key in both bits/ipc-perm.h
};

/** Constants whose C counterpart is an expression rather than a macro of the same name. */
const C_EXPRESSIONS: Record<string, string> = {
  SIGNAL_MAX: "NSIG - 1", // the highest signal number
  SEMVMX: "uapi_SEMVMX", // only in <linux/sem.h>, which clashes with glibc: see uapi.c
  NOTIFY_COOKIE_LEN: "uapi_NOTIFY_COOKIE_LEN", // only in <linux/mqueue.h>, likewise
  NOTIFY_WOKENUP: "uapi_NOTIFY_WOKENUP",
  NOTIFY_REMOVED: "uapi_NOTIFY_REMOVED",
};

/**
 * Exports of ffi/constants.ts with no C counterpart, each with the reason. Everything else is
 * probed: a new constant is checked, or the probe fails to compile naming it, until it is
 * mapped in C_EXPRESSIONS or listed here.
 */
export const EXCLUDED: Record<string, string> = {};

/** One line of the probe: its name, the C line that prints it, and ffi/'s value. */
export interface ProbeItem {
  name: string;
  c: string;
  expected: string;
}

const FFI_DIR = new URL("../../ffi/", import.meta.url);

/**
 * ffi/layout.ts and ffi/constants.ts as they evaluate on `arch`. On this process's own
 * architecture, the modules themselves; for another, a copy of ffi/ in a temporary directory
 * with every `Deno.build.arch` replaced by `arch`. Throws if ffi/ reads the architecture in
 * any other way (`Deno.build` left after the replacement), so that the copy cannot silently
 * evaluate for the wrong one.
 */
export async function ffiFor(arch: Arch): Promise<Ffi> {
  if (arch === Deno.build.arch) {
    return {
      layout: await import(new URL("layout.ts", FFI_DIR).href),
      constants: await import(new URL("constants.ts", FFI_DIR).href),
    };
  }
  return await ffiRewrittenFor(arch);
}

/** ffi/ evaluated for `arch` through the rewritten copy, whatever this process's arch. */
export async function ffiRewrittenFor(arch: Arch): Promise<Ffi> {
  const dir = await Deno.makeTempDir({ prefix: `pipc-layout-ffi-${arch}-` });
  try {
    // layout.ts, constants.ts and what they import, which must be in ffi/ too.
    const pending = ["layout.ts", "constants.ts"];
    const copied = new Set<string>();
    for (let file; (file = pending.pop()) !== undefined;) {
      if (copied.has(file)) continue;
      copied.add(file);
      const source = await Deno.readTextFile(new URL(file, FFI_DIR));
      const text = source.replaceAll("Deno.build.arch", `(${JSON.stringify(arch)} as string)`);
      if (/Deno\s*\.\s*build(?!\s*\.\s*os\b)/.test(text)) {
        throw new Error(
          `ffi/${file} reads the architecture other than as \`Deno.build.arch\`: the layout ` +
            "check cannot evaluate it for another architecture. Read it as " +
            "`Deno.build.arch`, or teach tests/layout/probe.ts the new way.",
        );
      }
      for (const [, specifier] of text.matchAll(/(?:from|import)\s*\(?\s*["']([^"']+)["']/g)) {
        const match = /^\.\/([\w.-]+\.ts)$/.exec(specifier);
        if (!match) {
          throw new Error(
            `ffi/${file} imports "${specifier}": the layout check copies only ffi/'s own ` +
              "modules (./name.ts) to evaluate them for another architecture",
          );
        }
        pending.push(match[1]);
      }
      await Deno.writeTextFile(`${dir}/${file}`, text);
    }
    return {
      layout: await import(`file://${dir}/layout.ts`),
      constants: await import(`file://${dir}/constants.ts`),
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * The probe items for every export of `ffi`: each layout field (`size` as sizeof, `align` as
 * _Alignof, any other key as offsetof), each number constant, each entry of a table of
 * numbers (SIGNALS), and each entry of a table from numbers to names (ERRNO). Throws on an
 * export of a shape it cannot probe that {@linkcode EXCLUDED} does not list.
 */
export function probeItems(ffi: Ffi): ProbeItem[] {
  const items: ProbeItem[] = [];
  const add = (name: string, c: string, expected: unknown) => {
    if (typeof expected !== "number" && typeof expected !== "bigint") {
      throw new TypeError(`${name} is ${typeof expected}, not a number`);
    }
    items.push({ name, c, expected: String(expected) });
  };
  for (const [name, value] of Object.entries(ffi.layout)) {
    if (!isRecord(value)) {
      throw new TypeError(`ffi/layout.ts exports ${name}, not a layout object: teach probe.ts`);
    }
    if (TYPE_TABLES.has(name)) {
      for (const [type, size] of Object.entries(value)) {
        add(`${name}.${type}`, `SIZE("${name}.${type}", ${type})`, size);
      }
      continue;
    }
    const type = name.endsWith("_t") ? name : `struct ${name}`;
    for (const [key, figure] of Object.entries(value)) {
      const item = `${name}.${key}`;
      if (key === "size") add(item, `SIZE("${item}", ${type})`, figure);
      else if (key === "align") add(item, `ALIGN("${item}", ${type})`, figure);
      else add(item, `OFFSET("${item}", ${type}, ${C_FIELDS[item] ?? key})`, figure);
    }
  }
  for (const [name, value] of Object.entries(ffi.constants)) {
    if (name in EXCLUDED) continue;
    if (typeof value === "number" || typeof value === "bigint") {
      add(name, `VALUE("${name}", ${C_EXPRESSIONS[name] ?? name})`, value);
    } else if (isRecord(value) && Object.values(value).every((v) => typeof v === "number")) {
      // A table of names to numbers: each name is a C macro.
      for (const [key, number] of Object.entries(value)) {
        add(`${name}.${key}`, `VALUE("${name}.${key}", ${key})`, number);
      }
    } else if (
      isRecord(value) &&
      Object.entries(value).every(([key, v]) =>
        /^\d+$/.test(key) && Array.isArray(v) && typeof v[0] === "string"
      )
    ) {
      // A table of numbers to [C name, …]: each C name must have the number as its value.
      for (const [number, [code]] of Object.entries(value as Record<string, [string]>)) {
        add(`${name}.${code}`, `VALUE("${name}.${code}", ${code})`, Number(number));
      }
    } else {
      throw new TypeError(
        `ffi/constants.ts exports ${name}, which the layout probe cannot check: map it to a ` +
          "C expression in C_EXPRESSIONS, or list it in EXCLUDED with the reason " +
          "(tests/layout/probe.ts)",
      );
    }
  }
  const seen = new Set<string>();
  for (const { name } of items) {
    if (seen.has(name)) throw new Error(`two probe items are named ${name}`);
    seen.add(name);
  }
  return items;
}

/** The architecture of this machine's CPU, which under qemu-user differs from Deno's. */
export async function hostArch(): Promise<string> {
  const { stdout } = await new Deno.Command("uname", { args: ["-m"], stderr: "inherit" }).output();
  return new TextDecoder().decode(stdout).trim();
}

/**
 * Builds tests/layout/probe.c for `arch` with `items` and runs it: natively on this machine's
 * architecture, else under qemu-user with the cross libc. Returns the printed values by name.
 * Throws, saying what to install, when the compiler, qemu or the cross libc is missing.
 */
export async function runProbe(arch: Arch, items: ProbeItem[]): Promise<Map<string, string>> {
  const target = TARGETS[arch];
  const native = (await hostArch()) === arch;
  const dir = await Deno.makeTempDir({ prefix: `pipc-layout-probe-${arch}-` });
  try {
    await Deno.writeTextFile(`${dir}/items.h`, items.map((item) => item.c).join("\n") + "\n");
    const compiler = native ? "cc" : `${target.triple}-gcc`;
    const install = native
      ? "apt-get install gcc (or build-essential)"
      : `apt-get install ${target.compilerPackage} ${target.libcPackage}`;
    const source = new URL("./", import.meta.url).pathname;
    const build = await output(compiler, [
      "-std=gnu11",
      `-DPROBE_ITEMS="${dir}/items.h"`,
      `${source}probe.c`,
      `${source}uapi.c`,
      "-o",
      `${dir}/probe`,
    ], `${compiler} is missing: the layout check builds a probe with it for ${arch}. ${install}`);
    if (!build.success) {
      throw new Error(
        `${compiler} could not build the layout probe for ${arch}. (Where the error names a ` +
          "name of ffi/ that C knows otherwise or not at all, map it in C_FIELDS or " +
          "C_EXPRESSIONS, or list it in EXCLUDED with the reason: tests/layout/probe.ts.)\n" +
          `${build.stderr}`,
      );
    }
    const run = native ? await output(`${dir}/probe`, [], "the probe vanished") : await output(
      target.qemu,
      ["-L", `/usr/${target.triple}`, `${dir}/probe`],
      `${target.qemu} is missing: the layout check runs the ${arch} probe under it. ` +
        `apt-get install qemu-user ${target.libcPackage}`,
    );
    if (!run.success) {
      throw new Error(
        `the ${arch} layout probe failed` +
          (native ? "" : ` under ${target.qemu} (is ${target.libcPackage} installed?)`) +
          `:\n${run.stderr}`,
      );
    }
    const printed = new Map<string, string>();
    for (const line of run.stdout.split("\n")) {
      const space = line.lastIndexOf(" ");
      if (space > 0) printed.set(line.slice(0, space), line.slice(space + 1));
    }
    if (printed.get("arch") !== arch) {
      throw new Error(`the probe built for ${arch} says it is "${printed.get("arch")}"`);
    }
    printed.delete("arch");
    return printed;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Every difference between ffi/'s values and the probe's, one line each. */
export function differences(items: ProbeItem[], printed: Map<string, string>): string[] {
  const lines: string[] = [];
  for (const { name, expected } of items) {
    const actual = printed.get(name);
    if (actual === undefined) lines.push(`${name}: the probe printed nothing`);
    else if (actual !== expected) lines.push(`${name}: ffi/ has ${expected}, glibc ${actual}`);
  }
  return lines;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

async function output(
  command: string,
  args: string[],
  missing: string,
): Promise<{ success: boolean; stdout: string; stderr: string }> {
  try {
    const { success, stdout, stderr } = await new Deno.Command(command, { args }).output();
    const decoder = new TextDecoder();
    return { success, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) throw new Error(missing);
    throw error;
  }
}

if (import.meta.main) {
  const archs = Deno.args.length > 0 ? Deno.args : Object.keys(TARGETS);
  for (const arch of archs) {
    if (!(arch in TARGETS)) throw new RangeError(`unknown arch ${arch}`);
    const items = probeItems(await ffiFor(arch as Arch));
    const printed = await runProbe(arch as Arch, items);
    for (const [name, value] of printed) console.log(`${arch} ${name} ${value}`);
  }
}
