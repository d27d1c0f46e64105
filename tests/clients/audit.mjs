// graphql-http's GraphQL-over-HTTP audit of TASKQL_URL/graphql: every result as JSON, with the
// response's status, content type and body for the ones that are not ok. Exits 0 whenever the
// audit ran; the test judges the results.
import { auditServer } from "graphql-http";

import { run, target } from "./lib.mjs";

async function describe(response) {
  if (!response) return undefined;
  const body = await response.text().catch((error) => `(unreadable: ${error})`);
  return {
    status: response.status,
    contentType: response.headers.get("content-type"),
    body: body.slice(0, 500),
  };
}

async function audit() {
  const { graphql } = target();
  const results = await auditServer({ url: graphql });
  const described = [];
  for (const { id, name, status, reason, response } of results) {
    const failed = status === "ok" ? {} : { reason, response: await describe(response) };
    described.push({ id, name, status, ...failed });
  }
  const counts = {};
  for (const { status } of described) counts[status] = (counts[status] ?? 0) + 1;
  return { url: graphql, counts, results: described };
}

run("graphql-http audit", audit);
