/**
 * What an admin may say about a pre-registration or an auto-approve rule, checked once at the
 * edge (zod only). The names are the API's (`PRODUCT.md`, "Interfaces").
 */
import { z } from "zod";
import { nodeLabels } from "../clusters/spec.js";
import { meaningfulSerial, meaningfulUuid } from "../enrollment/enroll.js";
import { macText, smbiosText, uuidText } from "../identity.js";
import { rolePreferences } from "../lifecycle/machine.js";
import { dnsLabelPattern } from "../lifecycle/node-name.js";
import { isIpv4Cidr } from "./cidr.js";

const clusterId = z.number({ error: "cluster_id must be a cluster id" }).int().positive();

const hostname = z
  .string()
  .regex(dnsLabelPattern, "hostname must be an RFC 1123 label: 1-63 lower-case letters, digits or '-', starting and ending with a letter or digit");

const nonEmptyText = (what: string) => smbiosText.refine((v) => v.length > 0, `${what} must not be empty`);

/** `POST /api/v1/machines`: exactly one of mac, serial, uuid; the cluster; optional name, labels, role. */
export const preRegistrationCreate = z
  .object({
    mac: macText.optional(),
    // Placeholders ("To be filled by O.E.M.", all-zero UUIDs) name no machine: one would approve every such machine.
    serial: nonEmptyText("serial")
      .refine((s) => meaningfulSerial(s) !== undefined, "serial is a vendor placeholder that many machines report; pre-register by MAC instead")
      .optional(),
    uuid: uuidText.refine((u) => meaningfulUuid(u) !== undefined, "uuid is a placeholder that many machines report; pre-register by MAC instead").optional(),
    cluster_id: clusterId,
    hostname: hostname.optional(),
    labels: nodeLabels.default({}),
    role: z.enum(rolePreferences).default("auto"),
  })
  .strict()
  .refine((b) => [b.mac, b.serial, b.uuid].filter((v) => v !== undefined).length === 1, {
    message: "give exactly one of mac, serial or uuid: the identity the machine will enroll with",
    path: ["mac"],
  });

/** A validated pre-registration body. */
export type PreRegistrationCreate = z.output<typeof preRegistrationCreate>;

const ruleName = z.string().regex(/^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$/, "name must be 1-64 lower-case letters, digits, '.', '_' or '-'");

const ruleMatch = z
  .object({
    cidr: z.string().refine(isIpv4Cidr, "match.cidr must be an IPv4 CIDR such as 10.20.0.0/24").optional(),
    manufacturer: nonEmptyText("match.manufacturer").optional(),
    product: nonEmptyText("match.product").optional(),
    serial_prefix: nonEmptyText("match.serial_prefix").optional(),
  })
  .strict()
  // A rule without conditions would approve every machine on every network: say so with 0.0.0.0/0.
  .refine(
    (m) => Object.values(m).some((v) => v !== undefined),
    "match needs at least one of cidr, manufacturer, product, serial_prefix (0.0.0.0/0 for any source)",
  );

const ruleLimit = z.number({ error: "limit must be a whole number" }).int().min(0).max(1_000_000);

/** `POST /api/v1/rules`. */
export const ruleCreate = z
  .object({
    name: ruleName,
    cluster_id: clusterId,
    match: ruleMatch,
    role: z.enum(rolePreferences).nullable().default(null),
    limit: ruleLimit.nullable().default(null),
    enabled: z.boolean().default(true),
  })
  .strict();

/** `PATCH /api/v1/rules/:id`: the same names, each optional; `match` is replaced whole. */
export const rulePatch = z
  .object({
    name: ruleName,
    cluster_id: clusterId,
    match: ruleMatch,
    role: z.enum(rolePreferences).nullable(),
    limit: ruleLimit.nullable(),
    enabled: z.boolean(),
  })
  .partial()
  .strict();

/** A validated rule body. */
export type RuleCreate = z.output<typeof ruleCreate>;
/** A validated rule patch. */
export type RulePatch = z.output<typeof rulePatch>;
