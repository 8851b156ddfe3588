// Owns the request schemas of the environment and doctor operations, which src/contract does not
// declare yet (it has their results only). They belong in src/contract/schemas.ts beside RunParams;
// move them there and re-export from here when the contract module takes them.
import { z } from "zod";
import { EnvironmentName } from "../contract/schemas.js";

export const EnvironmentParams = z.strictObject({
  environment: EnvironmentName.describe("Environment name, e.g. debian:12."),
});
export type EnvironmentParams = z.input<typeof EnvironmentParams>;

export const EnvironmentPullParams = EnvironmentParams.extend({
  force: z.boolean().default(false).describe("Rebuild even when a valid copy is installed."),
});
export type EnvironmentPullParams = z.input<typeof EnvironmentPullParams>;

export const DoctorParams = z.strictObject({
  environment: EnvironmentName.optional().describe("Also check that this environment is installed and current."),
  repair: z.boolean().default(false).describe("Clean up what crashed sandboxes left behind."),
});
export type DoctorParams = z.input<typeof DoctorParams>;
