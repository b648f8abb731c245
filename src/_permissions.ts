/**
 * Deno permission checks that the library makes on the user's behalf, because calls through
 * FFI bypass Deno's own: the same checks, prompts and messages as Deno's APIs. Internal.
 *
 * @module
 */

/**
 * Throws `Deno.errors.NotCapable` unless the permission is granted; where Deno would prompt,
 * it prompts.
 */
function require(descriptor: Deno.PermissionDescriptor, subject: string, flag: string): void {
  let { state } = Deno.permissions.querySync(descriptor);
  if (state === "prompt") state = Deno.permissions.requestSync(descriptor).state;
  if (state !== "granted") {
    throw new Deno.errors.NotCapable(
      `Requires ${descriptor.name} access${subject}, run again with the ${flag} flag`,
    );
  }
}

/** What `Deno.open` checks: read or write access to `path`. */
export function requirePermission(name: "read" | "write", path: string): void {
  require({ name, path }, ` to "${path}"`, `--allow-${name}`);
}

/**
 * What `Deno.Command` checks for `command`, and, with no command, what `Deno.kill` checks:
 * `--allow-run`.
 */
export function requireRunPermission(command?: string): void {
  const descriptor: Deno.RunPermissionDescriptor = command === undefined
    ? { name: "run" }
    : { name: "run", command };
  require(descriptor, command === undefined ? "" : ` to "${command}"`, "--allow-run");
}

/** Whether `--allow-run` is granted for every program, as Deno's own spawn checks ask. */
function runsAnything(): boolean {
  return Deno.permissions.querySync({ name: "run" }).state === "granted";
}

/**
 * The variables that let a child load code of the caller's choice before its `main` (LD_PRELOAD,
 * LD_LIBRARY_PATH, DYLD_INSERT_LIBRARIES, …): Deno 2 lets only an unscoped `--allow-run` spawn
 * with any of them set, since they would run other code under an allowed program's name. Like
 * Deno: a name is matched ignoring case and surrounding spaces, and an empty value is unset.
 */
function loaderVariables(environment: Readonly<Record<string, string>>): string[] {
  return Object.entries(environment)
    .filter(([key, value]) => /^(LD_|DYLD_)/i.test(key.trim()) && value !== "")
    .map(([key]) => key)
    .sort();
}

/**
 * What `Deno.Command` checks before it spawns, for a program that the caller has already
 * resolved the way the child will find it (the child's PATH and working directory): without an
 * unscoped `--allow-run`, no LD_* or DYLD_* variable in the child's whole `environment`, and run
 * access to `program`, the resolved path, not merely to the name asked for.
 *
 * @param command The command as the caller gave it, for messages.
 * @param program Its resolved path.
 * @param environment The child's whole environment.
 */
export function requireSpawnPermission(
  command: string,
  program: string,
  environment: Readonly<Record<string, string>>,
): void {
  if (runsAnything()) return;
  const loader = loaderVariables(environment);
  if (loader.length > 0) {
    const [these, variables] = loader.length === 1 ? ["the", "variable"] : ["these", "variables"];
    throw new Deno.errors.NotCapable(
      `Requires --allow-run permissions to spawn subprocess with ${loader.join(", ")} ` +
        `environment ${variables}. Alternatively, spawn with ${these} environment ${variables} unset.`,
    );
  }
  const subject = program === command
    ? ` to "${command}"`
    : ` to "${command}" (found at "${program}")`;
  require({ name: "run", command: program }, subject, "--allow-run");
}
