// Validates an AsyncAPI document with the AsyncAPI project's parser: prints each error
// (severity 0) as `path: message` and exits 1 if there is any; warnings are printed too.
import { readFileSync } from "node:fs";
import { Parser } from "@asyncapi/parser";

const [, , file] = process.argv;
const diagnostics = await new Parser().validate(readFileSync(file, "utf8"));
let errors = 0;
for (const d of diagnostics) {
  const where = (d.path || []).join(".") || "(document)";
  console.log(`${d.severity === 0 ? "error" : "warning"} ${where}: ${d.message}`);
  if (d.severity === 0) errors += 1;
}
console.log(`${errors} error(s), ${diagnostics.length - errors} other diagnostic(s)`);
process.exit(errors ? 1 : 0);
