// The public contract: schemas, defaults and errors, imported by every face.
export * from "./defaults.js";
export * from "./errors.js";
export * from "./parse.js";
export * from "./schemas.js";
export * from "./workspace.js";
