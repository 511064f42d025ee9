/** The README's picture of the platform is the one the catalog gives (scripts/docs/platform-diagram.ts). */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { catalog } from "../../catalog";
import { platformDiagram, README, withDiagram } from "../../scripts/docs/platform-diagram";

describe("README platform picture", () => {
  it("is up to date with the catalog (regenerate: npx tsx scripts/docs/platform-diagram.ts)", () => {
    const readme = readFileSync(README, "utf8");
    expect(withDiagram(readme, platformDiagram())).toBe(readme);
  });

  it("shows every service with its route, every datastore it uses and every call", () => {
    const d = platformDiagram();
    for (const s of catalog) {
      expect(d).toContain(s.name);
      if (s.route) expect(d).toContain(`/api/${s.route}/`);
      for (const c of s.calls) expect(d).toMatch(new RegExp(`${s.name.replace(/-/g, "_")} -->\\|HTTP\\| ${c.replace(/-/g, "_")}\\b`));
      for (const r of s.requires) expect(d).toContain(`${s.name.replace(/-/g, "_")} --> ${r}`);
    }
  });
});
