#!/usr/bin/env node
// The CLI is TypeScript; tsx compiles it on the fly so `npm ci` is the whole install.
import { register } from "tsx/esm/api";

register();
await import("../server/cli.ts");
