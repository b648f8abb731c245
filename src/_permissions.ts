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
