/**
 * Every admin command of `edgejoin`, one `register` function per noun (one file each). A new
 * command adds its file and one line here; server/cli.ts adds `serve` and calls each.
 */
import type { Command } from "commander";
import { addSimulateCommand } from "../simulate/command.js";
import { registerArtifacts } from "./artifacts.js";
import { registerBackup } from "./backup.js";
import { registerClusters } from "./clusters.js";
import { registerExplain } from "./explain.js";
import { registerKeys } from "./keys.js";
import { registerMachines } from "./machines.js";
import { registerNodes } from "./nodes.js";
import { registerRules } from "./rules.js";
import { registerTokens } from "./tokens.js";

/** Adds one command (with its subcommands) to the program. */
export type RegisterCommand = (program: Command) => void;

/** In the order `edgejoin --help` lists them. */
export const commands: readonly RegisterCommand[] = [
  registerNodes,
  registerClusters,
  registerMachines,
  registerRules,
  registerExplain,
  registerTokens,
  registerKeys,
  registerArtifacts,
  registerBackup,
  addSimulateCommand,
];
