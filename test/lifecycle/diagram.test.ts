import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { machineStates, transitions } from "../../server/lifecycle/machine.js";

/** The `A --> B : event` lines of the mermaid block in the README's "The life of a machine" section. */
function readmeEdges(): string[] {
  const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
  const section = readme.split("## The life of a machine")[1]?.split("\n## ")[0];
  if (!section) throw new Error("README.md has no '## The life of a machine' section");
  const block = /```mermaid\n([\s\S]*?)```/.exec(section)?.[1];
  if (!block) throw new Error("the README's lifecycle section has no mermaid block");
  return block
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.includes("-->"))
    .map((l) => {
      const m = /^(\S+) --> (\S+) : (\S+(?: \S+)*)$/.exec(l);
      if (!m) throw new Error(`cannot read diagram line: ${l}`);
      return `${m[1]} -> ${m[2]} : ${m[3]}`;
    });
}

const moduleEdges = transitions.flatMap((t) => t.from.map((f) => `${f} -> ${t.to} : ${t.event}`));

describe("the README's state diagram is the lifecycle module's transition table", () => {
  it("every arrow in the diagram is a transition, and every transition is drawn", () => {
    const drawn = readmeEdges().filter((e) => !e.startsWith("[*]"));
    expect([...drawn].sort()).toEqual([...moduleEdges].sort());
    expect(new Set(drawn).size).toBe(drawn.length);
  });

  it("the diagram starts machines at discovered and names only real states", () => {
    const edges = readmeEdges();
    expect(edges.filter((e) => e.startsWith("[*]"))).toEqual(["[*] -> discovered : first sighting"]);
    const named = new Set(edges.flatMap((e) => e.split(" : ")[0]!.split(" -> ")).filter((s) => s !== "[*]"));
    expect([...named].sort()).toEqual([...machineStates].sort());
  });
});
