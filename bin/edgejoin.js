#!/usr/bin/env node
// The CLI is TypeScript; tsx compiles it on the fly, in this process (no child process that a
// supervisor's SIGTERM would miss), so `npm ci` is the whole install.
import { register } from "tsx/esm/api";

register();
const { runCli } = await import("../server/cli.ts");
await runCli(process.argv.slice(2));
