// What every client scenario shares: where the server is, the first admin, a fetch that records
// each request and its answer, the import CSV and its error report, and how a scenario ends.
import { createHash } from "node:crypto";
import WebSocket from "ws";

// Node 20 has no global WebSocket; graphql-ws gets `ws` explicitly, and Apollo's GraphQLWsLink
// looks the global up when it inspects a socket error.
globalThis.WebSocket ??= WebSocket;

function required(name) {
  const value = process.env[name];
  if (!value) {
    process.stderr.write(`set ${name} (see tests/clients/README.md)\n`);
    process.exit(2);
  }
  return value;
}

export class ScenarioError extends Error {
  constructor(message, detail) {
    super(message);
    this.detail = detail;
  }
}

/** Stop the scenario with `message` (and `detail`, printed as JSON) unless `condition` holds. */
export function check(condition, message, detail) {
  if (!condition) throw new ScenarioError(message, detail);
}

export const sha256 = (text) => createHash("sha256").update(text).digest("hex");

/** The server under test: TASKQL_URL (http://host:port) and the first admin's credentials. */
export function target() {
  const base = required("TASKQL_URL").replace(/\/+$/, "");
  return {
    base,
    graphql: `${base}/graphql`,
    ws: `${base.replace(/^http/, "ws")}/graphql`,
    email: required("TASKQL_ADMIN_EMAIL"),
    password: required("TASKQL_ADMIN_PASSWORD"),
  };
}

function describeBody(body) {
  if (body === undefined || body === null) return null;
  if (typeof body !== "string") return { multipart: true };
  try {
    return JSON.parse(body);
  } catch {
    return body;
  }
}

/** A fetch that notes every request (method, URL, parsed body) and its response (status,
 * content type, parsed body) in `requests`, so a scenario can count what went over the wire. */
export function recordingFetch() {
  const requests = [];
  const recorded = async (url, init = {}) => {
    const entry = { method: init.method ?? "GET", url: String(url), body: describeBody(init.body) };
    requests.push(entry);
    const response = await fetch(url, init);
    entry.status = response.status;
    entry.contentType = response.headers.get("content-type");
    entry.response = describeBody(await response.clone().text());
    return response;
  };
  return { fetch: recorded, requests };
}

/** The persisted-query hash a recorded request carried, or undefined. */
export function hashOf(request) {
  if (request.method === "GET") {
    const extensions = new URL(request.url).searchParams.get("extensions");
    return extensions ? JSON.parse(extensions).persistedQuery?.sha256Hash : undefined;
  }
  return request.body?.extensions?.persistedQuery?.sha256Hash;
}

/** Whether a recorded request carried the query text (in its body or its URL). */
export function sentQuery(request) {
  if (request.method === "GET") return new URL(request.url).searchParams.has("query");
  return typeof request.body?.query === "string";
}

export function errorCodes(request) {
  const errors = request.response?.errors ?? [];
  return errors.map((e) => e.extensions?.code ?? e.message);
}

/** An import file for `projectId`: two good rows around one whose status is unknown. */
export function importCsv(projectId, tag) {
  const rows = [
    "project_id,title,description,status,assigned_to",
    `${projectId},${tag} imported one,from the client suite,Pending,`,
    `${projectId},${tag} bad row,unknown status,Someday,`,
    `${projectId},${tag} imported two,,Done,`,
  ];
  return { text: `${rows.join("\n")}\n`, badTitle: `${tag} bad row`, badLine: 3, good: 2, bad: 1 };
}

/** Rows of a CSV text (RFC 4180 quoting). */
export function parseCsv(text) {
  const rows = [];
  let row = [];
  let cell = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') (cell += '"'), i++;
      else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") row.push(cell), (cell = "");
    else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      row.push(cell), rows.push(row), (row = []), (cell = "");
    } else cell += c;
  }
  if (cell || row.length) row.push(cell), rows.push(row);
  return rows;
}

/** Download the error report at `url` (relative to the server) and check that it names the
 * rejected row; its rows as objects keyed by the header. */
export async function checkErrorReport(base, url, csv) {
  check(typeof url === "string" && url.startsWith("/"), "errorReportUrl is a relative link", url);
  const response = await fetch(`${base}${url}`);
  const text = await response.text();
  check(response.status === 200, `GET errorReportUrl answered ${response.status}`, text);
  const [header, ...rows] = parseCsv(text);
  const records = rows.map((cells) => Object.fromEntries(header.map((h, i) => [h, cells[i]])));
  check(
    records.length === csv.bad &&
      records[0].title === csv.badTitle &&
      records[0].row === String(csv.badLine) &&
      records[0].error,
    "the error report names the bad row",
    text,
  );
  return { rows: records.length, row: Number(records[0].row), error: records[0].error };
}

/** Wait for a subscription's events until it completes (or `ms` pass). */
export function collect(subscribe, ms = 30000) {
  return new Promise((resolve, reject) => {
    const events = [];
    let stop = () => {};
    const timer = setTimeout(() => {
      stop();
      reject(new ScenarioError(`the subscription did not complete within ${ms} ms`, events));
    }, ms);
    stop = subscribe({
      next: (event) => events.push(event),
      error: (error) => {
        clearTimeout(timer);
        reject(error);
      },
      complete: () => {
        clearTimeout(timer);
        resolve(events);
      },
    });
  });
}

/** JSON for failure details, with errors shown by their name, message and own fields. */
const showErrors = (key, value) =>
  value instanceof Error ? { name: value.name, message: value.message, ...value } : value;

/** Run a scenario: print its summary as JSON and exit 0, or print why it failed and exit 1. */
export async function run(name, scenario) {
  try {
    const summary = await scenario();
    process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    process.exit(0);
  } catch (error) {
    process.stderr.write(`${name} scenario failed: ${error?.message ?? error}\n`);
    if (error?.detail !== undefined) {
      process.stderr.write(`${JSON.stringify(error.detail, showErrors, 2)}\n`);
    } else if (error?.errors) {
      process.stderr.write(`${JSON.stringify(error.errors, showErrors, 2)}\n`);
    } else if (error?.stack) {
      process.stderr.write(`${error.stack}\n`);
    }
    process.exit(1);
  }
}

/** Subscribe, then `poke` (a write the subscription should see) until an event that `matches`
 * arrives, and resolve with it: graphql-transport-ws does not acknowledge a subscribe, so the
 * first pokes may come before the server listens. */
export async function firstEvent(subscribe, poke, matches, ms = 15000) {
  let stop = () => {};
  const arrived = new Promise((resolve, reject) => {
    stop = subscribe({
      next: (event) => {
        if (matches(event)) resolve(event);
      },
      error: reject,
      complete: () => reject(new ScenarioError("the subscription completed", [])),
    });
  });
  const deadline = Date.now() + ms;
  try {
    for (;;) {
      await poke();
      const pause = new Promise((resolve) => setTimeout(() => resolve(null), 400));
      const event = await Promise.race([arrived, pause]);
      if (event) return event;
      check(Date.now() < deadline, `no event arrived within ${ms} ms`);
    }
  } finally {
    stop();
  }
}
