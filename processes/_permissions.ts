/**
 * The `deno run` flags of a child process: its permissions (never more than
 * the parent holds), what it needs to reach its parent and load its modules,
 * and the configuration file its parent resolves imports with.
 *
 * @module
 */

import { show } from "../internal/options.ts";

/** One permission: all (`true`), none (`false`), or a list of paths, hosts, names. */
export type PermissionValue = boolean | string[];

/**
 * A child's permissions, in the shape of Deno's worker permissions.
 * `"inherit"` gives the child what the parent was granted globally; in the
 * object form a permission left out is not granted.
 */
export type Permissions =
  | "inherit"
  | "none"
  | {
    read?: PermissionValue;
    write?: PermissionValue;
    net?: PermissionValue;
    env?: PermissionValue;
    run?: PermissionValue;
    ffi?: PermissionValue;
    sys?: PermissionValue;
    import?: PermissionValue;
  };

const NAMES = ["read", "write", "net", "env", "run", "ffi", "sys", "import"] as const;
type Name = typeof NAMES[number];

/** A checked `permissions` option: one value per permission. */
export type ResolvedPermissions = Record<Name, PermissionValue>;

function descriptor(name: Name, item?: string): Deno.PermissionDescriptor {
  if (item === undefined) return { name } as Deno.PermissionDescriptor;
  switch (name) {
    case "read":
    case "write":
    case "ffi":
      return { name, path: item };
    case "net":
    case "import":
      return { name, host: item };
    case "env":
      return { name, variable: item };
    case "run":
      return { name, command: item };
    case "sys":
      return { name, kind: item as Deno.SysPermissionDescriptor["kind"] };
  }
}

/**
 * Whether this program holds a permission: all of it (no `item`), or for one
 * path, host or name. Under `-A --deny-read=secret`, read is "granted" but
 * `partial`: that is not all of it, so a child does not get `--allow-read`
 * (it could read what its parent may not). The same holds for a directory
 * with a denied file somewhere below it.
 */
function granted(name: Name, item?: string): boolean {
  try {
    const status = Deno.permissions.querySync(descriptor(name, item));
    return status.state === "granted" && !status.partial;
  } catch {
    return false;
  }
}

/**
 * Checks a `permissions` option and resolves it to one value per permission.
 *
 * @throws {TypeError} When it is malformed, or asks for a permission the parent lacks.
 */
export function resolvePermissions(
  permissions: unknown,
  where: string,
): Record<Name, PermissionValue> {
  return resolveRequested(permissions, where);
}

function resolveRequested(permissions: unknown, where: string): Record<Name, PermissionValue> {
  const resolved = {} as Record<Name, PermissionValue>;
  if (permissions === "inherit" || permissions === undefined) {
    for (const name of NAMES) resolved[name] = granted(name);
    return resolved;
  }
  if (permissions === "none") {
    for (const name of NAMES) resolved[name] = false;
    return resolved;
  }
  if (typeof permissions !== "object" || permissions === null || Array.isArray(permissions)) {
    throw new TypeError(
      `${where}: 'permissions' must be "inherit", "none" or an object: current value is ${
        show(permissions)
      }`,
    );
  }
  for (const key of Object.keys(permissions)) {
    if (!(NAMES as readonly string[]).includes(key)) {
      throw new TypeError(
        `${where}: unknown permission '${key}'; known permissions are: ${NAMES.join(", ")}`,
      );
    }
  }
  for (const name of NAMES) {
    const value = (permissions as Record<string, unknown>)[name] ?? false;
    if (value === true) {
      if (!granted(name)) {
        throw new TypeError(
          `${where}: permissions.${name} is true, but this program was not granted --allow-${name}; a child never gets a permission its parent lacks`,
        );
      }
    } else if (Array.isArray(value)) {
      for (const item of value) {
        if (typeof item !== "string" || !granted(name, item)) {
          throw new TypeError(
            `${where}: permissions.${name} lists ${
              JSON.stringify(item)
            }, which this program was not granted; a child never gets a permission its parent lacks`,
          );
        }
      }
    } else if (value !== false) {
      throw new TypeError(
        `${where}: permissions.${name} must be a boolean or an array of strings: current value is ${
          show(value)
        }`,
      );
    }
    resolved[name] = value as PermissionValue;
  }
  return resolved;
}

/**
 * What the library itself must let the child do, whatever the user asked:
 * load its entry module. (It talks to its parent over its own stdin and
 * stdout, which need no permission.)
 */
export interface LibraryNeeds {
  /** The child's entry module: its package must be readable or importable. */
  moduleUrl: URL;
}

/** The `deno run` flags for a child with `permissions`. */
export function childFlags(
  permissions: Record<Name, PermissionValue>,
  needs: LibraryNeeds,
): string[] {
  const extra: Record<Name, string[]> = {
    read: [],
    write: [],
    net: [],
    env: [],
    run: [],
    ffi: [],
    sys: [],
    import: [],
  };
  // A local package needs no grant: a main module and its static imports load without
  // read access. A remote one needs its host.
  if (needs.moduleUrl.protocol !== "file:") extra.import.push(needs.moduleUrl.host);
  // Task modules usually live in the project: let the child read it if the parent may.
  for (const dir of projectDirs()) if (granted("read", dir)) extra.read.push(dir);

  // The child shares the parent's deno.json but must not write its lockfile.
  const flags = ["--no-prompt", "--no-lock"];
  for (const name of NAMES) {
    const value = permissions[name];
    if (value === true) {
      flags.push(`--allow-${name}`);
      continue;
    }
    const items = [...(Array.isArray(value) ? value : []), ...extra[name]];
    if (items.length > 0) flags.push(`--allow-${name}=${[...new Set(items)].join(",")}`);
  }
  const config = findConfig();
  flags.push(config === undefined ? "--no-config" : `--config=${config}`);
  return flags;
}

function projectDirs(): string[] {
  const dirs: string[] = [];
  try {
    dirs.push(Deno.cwd());
  } catch {
    // No read access to the working directory.
  }
  if (Deno.mainModule.startsWith("file:")) {
    dirs.push(decodeURIComponent(new URL(".", Deno.mainModule).pathname));
  }
  return dirs;
}

/**
 * The configuration file the parent resolves imports with, found as Deno
 * finds it (deno.json or deno.jsonc in the working directory or above), so
 * that a task module's bare imports resolve in the child too. Without one the
 * child runs with `--no-config`, which also skips discovering package.json
 * and starts faster.
 */
function findConfig(): string | undefined {
  let dir: string;
  try {
    dir = Deno.cwd();
  } catch {
    return undefined;
  }
  while (true) {
    for (const name of ["deno.json", "deno.jsonc"]) {
      const path = `${dir}/${name}`;
      try {
        if (Deno.statSync(path).isFile) return path;
      } catch {
        // Not here, or not readable.
      }
    }
    const parent = dir.replace(/\/[^/]*$/, "");
    if (parent === dir || parent === "") return undefined;
    dir = parent;
  }
}
