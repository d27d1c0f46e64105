// Apollo Client 4 against TaskQL: login, mutations, a query, paging, the CSV upload
// (apollo-upload-client), the progress subscription (graphql-ws), the error report, persisted
// queries (POST and GET) and batching. Env: TASKQL_URL, TASKQL_ADMIN_EMAIL, TASKQL_ADMIN_PASSWORD.
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { BatchHttpLink } from "@apollo/client/link/batch-http";
import { PersistedQueryLink } from "@apollo/client/link/persisted-queries";
import { GraphQLWsLink } from "@apollo/client/link/subscriptions";
import UploadHttpLink from "apollo-upload-client/UploadHttpLink.mjs";
import { OperationTypeNode } from "graphql";
import { createClient } from "graphql-ws";
import WebSocket from "ws";

import {
  check,
  checkErrorReport,
  collect,
  errorCodes,
  firstEvent,
  hashOf,
  importCsv,
  recordingFetch,
  run,
  sentQuery,
  sha256,
  target,
} from "./lib.mjs";

const LOGIN = gql`
  mutation Login($input: LoginInput!) {
    login(input: $input) { accessToken user { id role } }
  }
`;
const CREATE_PROJECT = gql`
  mutation CreateProject($input: CreateProjectInput!) {
    createProject(input: $input) { project { id name } }
  }
`;
const CREATE_TASK = gql`
  mutation CreateTask($input: CreateTaskInput!) {
    createTask(input: $input) { task { id title status } }
  }
`;
const PROJECT = gql`
  query Project($id: Int!) {
    project(id: $id) { id name taskCounts { total pending inProgress done } }
  }
`;
const TASK_PAGE = gql`
  query TaskPage($projectId: Int!, $first: Int!, $after: String) {
    tasks(filter: { projectId: $projectId }, first: $first, after: $after) {
      totalCount
      pageInfo { hasNextPage endCursor }
      edges { cursor node { id title } }
    }
  }
`;
const IMPORT_TASKS = gql`
  mutation ImportTasks($file: Upload!) {
    importTasks(file: $file) { id status fileName }
  }
`;
const IMPORT_PROGRESS = gql`
  subscription ImportProgress($id: ID!) {
    importJobProgress(id: $id) {
      id status rowsProcessed rowsImported rowsFailed progress errorReportUrl
    }
  }
`;
const APQ_POST = gql`
  query ApqProject($id: Int!) { project(id: $id) { id name } }
`;
const APQ_GET = gql`
  query ApqProjectCounts($id: Int!) { project(id: $id) { id taskCounts { total done } } }
`;
const TASK = gql`
  query Task($id: Int!) { task(id: $id) { id title } }
`;
const UPDATE_TASK = gql`
  mutation UpdateTask($input: UpdateTaskInput!) { updateTask(input: $input) { task { id } } }
`;
const TASK_EVENTS = gql`
  subscription TaskEvents($projectId: Int) {
    taskEvents(projectId: $projectId) { kind taskId changedFields task { id title } }
  }
`;

const TASKS = 7;
const PAGE_SIZE = 3;
const BATCH = 4;

const server = target();
const newClient = (link) => new ApolloClient({ link, cache: new InMemoryCache() });

async function login() {
  const anonymous = newClient(new HttpLink({ uri: server.graphql }));
  const { data } = await anonymous.mutate({
    mutation: LOGIN,
    variables: { input: { email: server.email, password: server.password } },
  });
  check(data.login.user.role === "ADMIN", "the first admin logs in as ADMIN", data);
  return data.login.accessToken;
}

async function createProjectWithTasks(client, tag) {
  const { data } = await client.mutate({
    mutation: CREATE_PROJECT,
    variables: { input: { name: `${tag} project`, description: "Apollo Client 4" } },
  });
  const projectId = data.createProject.project.id;
  const taskIds = [];
  for (let i = 0; i < TASKS; i++) {
    const created = await client.mutate({
      mutation: CREATE_TASK,
      variables: { input: { projectId, title: `${tag} task ${i}`, status: "PENDING" } },
    });
    taskIds.push(created.data.createTask.task.id);
  }
  return { projectId, taskIds };
}

async function pageThroughTasks(client, projectId) {
  const ids = [];
  let after = null;
  let pages = 0;
  for (;;) {
    const { data } = await client.query({
      query: TASK_PAGE,
      variables: { projectId, first: PAGE_SIZE, after },
      fetchPolicy: "no-cache",
    });
    pages++;
    ids.push(...data.tasks.edges.map((edge) => edge.node.id));
    if (!data.tasks.pageInfo.hasNextPage) break;
    after = data.tasks.pageInfo.endCursor;
    check(pages < 50, "paging ends", data.tasks.pageInfo);
  }
  return { pages, ids, distinct: new Set(ids).size };
}

async function importThroughUpload(token, projectId, tag) {
  const uploads = newClient(
    new UploadHttpLink({
      uri: server.graphql,
      headers: { Authorization: `Bearer ${token}`, "Apollo-Require-Preflight": "true" },
    }),
  );
  const csv = importCsv(projectId, tag);
  const file = new File([csv.text], "tasks.csv", { type: "text/csv" });
  const { data } = await uploads.mutate({ mutation: IMPORT_TASKS, variables: { file } });
  const job = data.importTasks;
  check(job.status === "QUEUED" && job.fileName === "tasks.csv", "the upload queues a job", job);

  const ws = createClient({
    url: server.ws,
    webSocketImpl: WebSocket,
    connectionParams: { token },
    lazy: true,
  });
  const subscriptions = newClient(new GraphQLWsLink(ws));
  try {
    const events = await collect((observer) => {
      const subscription = subscriptions
        .subscribe({ query: IMPORT_PROGRESS, variables: { id: job.id } })
        .subscribe(observer);
      return () => subscription.unsubscribe();
    });
    const jobs = events.map((event) => {
      check(!event.error, "the subscription sends no errors", event.error);
      return event.data.importJobProgress;
    });
    const last = jobs.at(-1);
    check(last?.status === "SUCCEEDED", "the job finishes SUCCEEDED", jobs);
    check(
      last.rowsImported === csv.good && last.rowsFailed === csv.bad && last.progress === 1,
      "the job imported the good rows and rejected the bad one",
      last,
    );
    const report = await checkErrorReport(server.base, last.errorReportUrl, csv);
    return {
      jobId: job.id,
      events: jobs.length,
      statuses: [...new Set(jobs.map((j) => j.status))],
      rowsImported: last.rowsImported,
      rowsFailed: last.rowsFailed,
      report,
    };
  } finally {
    await ws.dispose();
  }
}

/** Run `part` with a recording fetch; a failure shows every request it recorded. */
async function recorded(part) {
  const recorder = recordingFetch();
  try {
    return await part(recorder);
  } catch (error) {
    error.detail ??= { requests: recorder.requests };
    throw error;
  }
}

/** PersistedQueryLink: a miss (hash only, PERSISTED_QUERY_NOT_FOUND), its retry with the query,
 * then the same query again as a hash alone. */
async function persistedQueries(recorder, token, projectId, { query, useGET }) {
  const client = newClient(
    ApolloLink.from([
      new PersistedQueryLink({ sha256, useGETForHashedQueries: useGET }),
      new HttpLink({
        uri: server.graphql,
        headers: { Authorization: `Bearer ${token}` },
        fetch: recorder.fetch,
      }),
    ]),
  );
  const { requests } = recorder;
  const ask = () => client.query({ query, variables: { id: projectId }, fetchPolicy: "no-cache" });
  const first = await ask();
  check(first.data?.project?.id === projectId, "the persisted query answers", first);
  check(requests.length === 2, "a first persisted query takes two requests", requests);
  const [miss, retry] = requests;
  const hash = hashOf(miss);
  check(
    hash && !sentQuery(miss) && miss.method === (useGET ? "GET" : "POST"),
    "the first request carries the hash alone",
    miss,
  );
  check(
    errorCodes(miss).includes("PERSISTED_QUERY_NOT_FOUND"),
    "the server answers an unknown hash with PERSISTED_QUERY_NOT_FOUND",
    miss,
  );
  check(
    sentQuery(retry) && hashOf(retry) === hash && sha256(retry.body.query) === hash,
    "the retry carries the query and its hash",
    retry,
  );

  const again = await ask();
  check(requests.length === 3, "the second persisted query takes one request", requests);
  const hit = requests[2];
  check(
    hashOf(hit) === hash && !sentQuery(hit) && hit.method === (useGET ? "GET" : "POST"),
    "the second request carries the hash alone",
    hit,
  );
  check(hit.status === 200 && again.data?.project?.id === projectId, "a known hash answers", hit);
  return {
    requests: requests.map((r) => ({ method: r.method, query: sentQuery(r), status: r.status })),
    missCode: errorCodes(miss)[0],
    missStatus: miss.status,
    missContentType: miss.contentType,
  };
}

async function batching(recorder, token, taskIds) {
  const client = newClient(
    new BatchHttpLink({
      uri: server.graphql,
      headers: { Authorization: `Bearer ${token}` },
      fetch: recorder.fetch,
      batchMax: 10,
      batchInterval: 20,
    }),
  );
  const ids = taskIds.slice(0, BATCH);
  const results = await Promise.all(
    ids.map((id) => client.query({ query: TASK, variables: { id }, fetchPolicy: "no-cache" })),
  );
  const { requests } = recorder;
  check(requests.length === 1, `${BATCH} queries go in one HTTP request`, requests);
  const [request] = requests;
  check(
    Array.isArray(request.body) && request.body.length === BATCH,
    `the request carries ${BATCH} operations`,
    request.body,
  );
  check(
    Array.isArray(request.response) && request.response.length === BATCH,
    `the response carries ${BATCH} results`,
    request.response,
  );
  results.forEach((result, i) =>
    check(result.data?.task?.id === ids[i], `batched query ${i} gets its task`, result),
  );
  return {
    httpRequests: requests.length,
    operations: request.body.length,
    answered: results.length,
  };
}

/** taskEvents over GraphQLWsLink: an updateTask through HTTP arrives as an UPDATED event. */
async function taskEvents(client, token, projectId, taskId, tag) {
  const ws = createClient({ url: server.ws, webSocketImpl: WebSocket, connectionParams: { token } });
  const subscriptions = newClient(new GraphQLWsLink(ws));
  let pokes = 0;
  const poke = () =>
    client.mutate({
      mutation: UPDATE_TASK,
      variables: { input: { id: taskId, title: `${tag} live ${++pokes}` } },
    });
  try {
    const event = await firstEvent(
      (observer) => {
        const subscription = subscriptions
          .subscribe({ query: TASK_EVENTS, variables: { projectId } })
          .subscribe(observer);
        return () => subscription.unsubscribe();
      },
      poke,
      (event) => event.data?.taskEvents?.taskId === taskId,
    );
    check(!event.error, "the task event carries no errors", event.error);
    const { kind, changedFields, task } = event.data.taskEvents;
    check(task?.title?.startsWith(`${tag} live`), "the event carries the task as it is now", task);
    return { kind, changedFields, taskId: task.id };
  } finally {
    await ws.dispose();
  }
}

const PARTS = ["core", "apq", "batch", "events"];

/** Log in and make a project with tasks, then run the parts asked for on the command line
 * (`core`: query, paging, upload, subscription, report; `apq`; `batch`), all by default. */
async function scenario(parts) {
  const unknown = parts.filter((part) => !PARTS.includes(part));
  check(unknown.length === 0, `unknown parts ${unknown}; choose from ${PARTS}`);
  const tag = `apollo-${Date.now()}`;
  const token = await step("login", login);
  const client = newClient(
    new HttpLink({ uri: server.graphql, headers: { Authorization: `Bearer ${token}` } }),
  );
  const { projectId, taskIds } = await step("mutations", () => createProjectWithTasks(client, tag));
  const summary = { projectId, tasksCreated: taskIds.length };
  if (parts.includes("core")) {
    summary.query = await step("query", async () => {
      const { data } = await client.query({ query: PROJECT, variables: { id: projectId } });
      check(data.project.taskCounts.total === TASKS, "the project counts its tasks", data);
      const { __typename, ...counts } = data.project.taskCounts;
      return counts;
    });
    const paging = await step("paging", () => pageThroughTasks(client, projectId));
    check(paging.distinct === TASKS, `paging finds ${TASKS} distinct tasks`, paging);
    summary.paging = { pages: paging.pages, ids: paging.ids.length, distinct: paging.distinct };
    summary.upload = await step("upload", () => importThroughUpload(token, projectId, tag));
    const after = await client.query({
      query: PROJECT,
      variables: { id: projectId },
      fetchPolicy: "network-only",
    });
    summary.tasksAfterImport = after.data.project.taskCounts.total;
    check(
      summary.tasksAfterImport === TASKS + summary.upload.rowsImported,
      "the imported tasks join the project",
      after.data,
    );
  }
  if (parts.includes("apq")) {
    summary.apqPost = await step("apq (POST)", () =>
      recorded((r) => persistedQueries(r, token, projectId, { query: APQ_POST, useGET: false })),
    );
    summary.apqGet = await step("apq (useGETForHashedQueries)", () =>
      recorded((r) => persistedQueries(r, token, projectId, { query: APQ_GET, useGET: true })),
    );
  }
  if (parts.includes("events")) {
    summary.events = await step("events", () =>
      taskEvents(client, token, projectId, taskIds[0], tag),
    );
  }
  if (parts.includes("batch")) {
    summary.batch = await step("batch", () => recorded((r) => batching(r, token, taskIds)));
  }
  return summary;
}

/** Name the step in a failure, so the message says which part of the scenario broke. */
async function step(name, fn) {
  try {
    return await fn();
  } catch (error) {
    error.message = `${name}: ${error.message}`;
    throw error;
  }
}

const asked = process.argv.slice(2);
run("apollo", () => scenario(asked.length ? asked : PARTS));
