/** Debian's cloud-init as the judge of what we render: its schema validator, its YAML reader, its schema JSON. */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { tempDir } from "../helpers/temp-dir.js";

const python = "/usr/bin/python3";

function requireCloudInit(): void {
  if (!existsSync(python)) throw new Error("/usr/bin/python3 is missing: apt-get install python3");
  const probe = spawnSync("cloud-init", ["--version"], { encoding: "utf8" });
  if (probe.error || probe.status !== 0) {
    throw new Error("cloud-init is not installed: touch /etc/cloud/cloud-init.disabled, then apt-get install cloud-init");
  }
}

/** `cloud-init schema --config-file`: exit status and output. */
export function cloudInitSchema(userData: string): { ok: boolean; output: string } {
  requireCloudInit();
  const { dir, remove } = tempDir("ci");
  try {
    const file = join(dir, "user-data");
    writeFileSync(file, userData);
    const r = spawnSync("cloud-init", ["schema", "--config-file", file], { encoding: "utf8", timeout: 60_000 });
    return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
  } finally {
    remove();
  }
}

/**
 * The check `cloud-init schema --config-file` makes (its `validate_cloudconfig_file`), for many
 * documents in one Python process: starting cloud-init once per document costs ~0.7 s each.
 */
export function cloudInitSchemaAll(userData: string[]): { ok: boolean; output: string }[] {
  requireCloudInit();
  const { dir, remove } = tempDir("ci");
  try {
    const files = userData.map((text, i) => {
      const file = join(dir, `user-data-${i}`);
      writeFileSync(file, text);
      return file;
    });
    const script = [
      "import sys, json",
      "from cloudinit.config.schema import validate_cloudconfig_file, get_schema, SchemaValidationError",
      "schema = get_schema()",
      "out = []",
      "for f in sys.argv[2:]:",
      "    try:",
      "        validate_cloudconfig_file(f, schema, False)",
      "        out.append([True, ''])",
      "    except SchemaValidationError as e:",
      "        out.append([False, str(e)])",
      "    except Exception as e:",
      "        out.append([False, repr(e)])",
      // cloud-init prints its own notes to stdout; the verdicts go to a file.
      "open(sys.argv[1], 'w').write(json.dumps(out))",
    ].join("\n");
    const verdicts = join(dir, "verdicts.json");
    execFileSync(python, ["-c", script, verdicts, ...files], { encoding: "utf8", timeout: 120_000, stdio: ["ignore", "ignore", "inherit"] });
    return (JSON.parse(readFileSync(verdicts, "utf8")) as [boolean, string][]).map(([ok, output]) => ({ ok, output }));
  } finally {
    remove();
  }
}

/** Fail unless cloud-init's schema check accepts every document. */
export function expectValidUserData(...userData: string[]): void {
  const results = cloudInitSchemaAll(userData);
  const failures = results.map((r, i) => (r.ok ? "" : `document ${i}: ${r.output}`)).filter(Boolean);
  if (failures.length > 0) throw new Error(`cloud-init schema refused rendered user-data:\n${failures.join("\n")}`);
}

/** What PyYAML (cloud-init's reader, YAML 1.1) makes of a document, as JSON-able data. */
export function pyyamlLoad(text: string): unknown {
  requireCloudInit();
  const out = execFileSync(python, ["-c", "import sys, yaml, json; print(json.dumps(yaml.safe_load(sys.stdin.read())))"], {
    input: text,
    encoding: "utf8",
  });
  return JSON.parse(out) as unknown;
}

/** Every top-level key cloud-init's own schema JSON knows. */
export function cloudConfigSchemaKeys(): Set<string> {
  requireCloudInit();
  const file = execFileSync(
    python,
    ["-c", "import cloudinit, os; print(os.path.join(os.path.dirname(cloudinit.__file__), 'config/schemas/schema-cloud-config-v1.json'))"],
    { encoding: "utf8" },
  ).trim();
  const schema = JSON.parse(readFileSync(file, "utf8")) as { $defs: Record<string, { properties?: Record<string, unknown> }>; allOf: { $ref: string }[] };
  const keys = new Set<string>();
  for (const { $ref } of schema.allOf) for (const k of Object.keys(schema.$defs[$ref.split("/").pop()!]?.properties ?? {})) keys.add(k);
  return keys;
}

/** Ubuntu's autoinstall JSON Schema (subiquity's; see test/fixtures/schemas/README.md). */
export function autoinstallSchema(): object {
  const file = fileURLToPath(new URL("../fixtures/schemas/autoinstall-schema.json", import.meta.url));
  return JSON.parse(readFileSync(file, "utf8")) as object;
}
