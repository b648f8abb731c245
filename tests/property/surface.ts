/**
 * The public surface the property suite must cover, read from the modules themselves: every
 * exported function, every class (as "new Class"), its static methods and accessors, and its
 * prototype's methods and accessors, and the functions inside exported objects (codecs). A new
 * export appears here on its own, so the coverage test fails until a property covers it.
 *
 * @module
 */

import config from "../../deno.json" with { type: "json" };

/** The entry points: every module of deno.json's "exports", relative to this file. */
export const ENTRY_POINTS: readonly string[] = Object.values(
  config.exports as Record<string, string>,
).map((path) => new URL(`../../${path}`, import.meta.url).href);

const CLASS_SOURCE = /^class\b/;
const FUNCTION_OWN_KEYS = new Set(["length", "name", "prototype", "caller", "arguments"]);

function memberName(key: PropertyKey): string {
  return typeof key === "symbol" ? `[${key.description}]` : String(key);
}

function classMembers(name: string, value: { prototype: object }): string[] {
  const members = [`new ${name}`];
  for (const key of Reflect.ownKeys(value)) {
    if (typeof key === "string" && FUNCTION_OWN_KEYS.has(key)) continue;
    const descriptor = Object.getOwnPropertyDescriptor(value, key)!;
    if (typeof descriptor.value === "function" || descriptor.get || descriptor.set) {
      members.push(`${name}.${memberName(key)}`);
    }
  }
  for (const key of Reflect.ownKeys(value.prototype)) {
    if (key === "constructor") continue;
    members.push(`${name}.prototype.${memberName(key)}`);
  }
  return members;
}

function objectMembers(name: string, value: object, depth = 0): string[] {
  const members: string[] = [];
  for (const [key, inner] of Object.entries(value)) {
    if (typeof inner === "function") members.push(`${name}.${key}`);
    else if (inner && typeof inner === "object" && depth < 2) {
      members.push(...objectMembers(`${name}.${key}`, inner, depth + 1));
    }
  }
  return members;
}

/** Every public member, named as properties' `covers` name them, with the entry points. */
export async function publicSurface(): Promise<Map<string, string[]>> {
  const surface = new Map<string, string[]>();
  const add = (member: string, entry: string) => {
    const entries = surface.get(member) ?? [];
    if (!entries.includes(entry)) entries.push(entry);
    surface.set(member, entries);
  };
  for (const entry of ENTRY_POINTS) {
    const module = await import(entry);
    for (const [name, value] of Object.entries(module)) {
      if (typeof value === "function") {
        const isClass = CLASS_SOURCE.test(Function.prototype.toString.call(value));
        const members = isClass ? classMembers(name, value as { prototype: object }) : [name];
        for (const member of members) add(member, entry);
      } else if (value && typeof value === "object") {
        for (const member of objectMembers(name, value)) add(member, entry);
      }
    }
  }
  return surface;
}
