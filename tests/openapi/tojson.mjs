// tojson.mjs - prints openapi.yaml as JSON, for the Python contract tests (tests/integration/test_openapi.py).
//
// Usage: node tests/openapi/tojson.mjs SPEC.yaml [OUT.json]   (no OUT: standard output)
// js-yaml's default schema is YAML 1.2's core schema, so 'true', '123' and
// 'null' written unquoted are a boolean, a number and null, as in any OpenAPI tool.
import { readFileSync, writeFileSync } from "node:fs";
import yaml from "js-yaml";

const [, , input, output] = process.argv;
if (!input) {
	console.error("usage: node tojson.mjs SPEC.yaml [OUT.json]");
	process.exit(2);
}
const doc = yaml.load(readFileSync(input, "utf8"), { filename: input, json: false });
const text = JSON.stringify(doc, null, 1) + "\n";
if (output)
	writeFileSync(output, text);
else
	process.stdout.write(text);
