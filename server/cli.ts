/** `edgejoin` command line: the server and the admin client. */
import { Command } from "commander";

const program = new Command("edgejoin").description("zero-touch enrollment server for edge Kubernetes");

program
  .command("serve")
  .description("run the server (settings from EDGEJOIN_* environment variables)")
  .action(async () => {
    const { serve } = await import("./main.js");
    await serve(process.env);
  });

await program.parseAsync(process.argv);
