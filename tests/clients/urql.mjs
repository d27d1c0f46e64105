// urql 6 (@urql/core) against TaskQL: login, a query, mutations, paging, the CSV upload (urql's
// own multipart support) and the progress subscription over graphql-ws.
// Env: TASKQL_URL, TASKQL_ADMIN_EMAIL, TASKQL_ADMIN_PASSWORD.
import { Client, fetchExchange, gql, subscriptionExchange } from "@urql/core";
import { createClient } from "graphql-ws";
import { onEnd, pipe, subscribe } from "wonka";
import WebSocket from "ws";

import {
  check,
  checkErrorReport,
  collect,
  firstEvent,
  importCsv,
  recordingFetch,
  run,
  target,
} from "./lib.mjs";

const LOGIN = gql`
  mutation Login($input: LoginInput!) {
    login(input: $input) { accessToken user { id role } }
  }
`;
const ME = gql`
  query Me { me { id email role } }
`;
const CREATE_PROJECT = gql`
  mutation CreateProject($input: CreateProjectInput!) {
    createProject(input: $input) { project { id name } }
  }
`;
const CREATE_TASK = gql`
  mutation CreateTask($input: CreateTaskInput!) {
    createTask(input: $input) { task { id title } }
  }
`;
const TASK_PAGE = gql`
  query TaskPage($projectId: Int!, $first: Int!, $after: String) {
    tasks(filter: { projectId: $projectId }, first: $first, after: $after) {
      pageInfo { hasNextPage endCursor }
      edges { node { id } }
    }
  }
`;
const IMPORT_TASKS = gql`
  mutation ImportTasks($file: Upload!) {
    importTasks(file: $file) { id status }
  }
`;
const IMPORT_PROGRESS = gql`
  subscription ImportProgress($id: ID!) {
    importJobProgress(id: $id) { id status rowsImported rowsFailed errorReportUrl }
  }
`;

const UPDATE_TASK = gql`
  mutation UpdateTask($input: UpdateTaskInput!) { updateTask(input: $input) { task { id } } }
`;
const TASK_EVENTS = gql`
  subscription TaskEvents($projectId: Int) {
    taskEvents(projectId: $projectId) { kind taskId changedFields task { id title } }
  }
`;

const TASKS = 5;
const PAGE_SIZE = 2;

const server = target();

/** The result's data, or stop with its error. */
function dataOf(result, what) {
  check(!result.error, `${what}: ${result.error?.message}`, result.error?.graphQLErrors);
  return result.data;
}

async function scenario() {
  const tag = `urql-${Date.now()}`;
  const anonymous = new Client({ url: server.graphql, exchanges: [fetchExchange] });
  const login = dataOf(
    await anonymous
      .mutation(LOGIN, { input: { email: server.email, password: server.password } })
      .toPromise(),
    "login",
  );
  const token = login.login.accessToken;

  const ws = createClient({
    url: server.ws,
    webSocketImpl: WebSocket,
    connectionParams: { token },
  });
  const recorder = recordingFetch();
  const client = new Client({
    url: server.graphql,
    fetch: recorder.fetch,
    requestPolicy: "network-only",
    fetchOptions: () => ({ headers: { Authorization: `Bearer ${token}` } }),
    exchanges: [
      subscriptionExchange({
        forwardSubscription: (request) => ({
          subscribe: (sink) => ({ unsubscribe: ws.subscribe(request, sink) }),
        }),
      }),
      fetchExchange,
    ],
  });
  try {
    const me = dataOf(await client.query(ME, {}).toPromise(), "query me").me;
    check(me.email === server.email && me.role === "ADMIN", "me is the first admin", me);

    const project = dataOf(
      await client
        .mutation(CREATE_PROJECT, { input: { name: `${tag} project`, description: "urql" } })
        .toPromise(),
      "createProject",
    ).createProject.project;
    for (let i = 0; i < TASKS; i++) {
      const input = { projectId: project.id, title: `${tag} task ${i}` };
      dataOf(await client.mutation(CREATE_TASK, { input }).toPromise(), "createTask");
    }

    const ids = [];
    let after = null;
    let pages = 0;
    for (;;) {
      const variables = { projectId: project.id, first: PAGE_SIZE, after };
      const page = dataOf(await client.query(TASK_PAGE, variables).toPromise(), "tasks page");
      pages++;
      ids.push(...page.tasks.edges.map((edge) => edge.node.id));
      if (!page.tasks.pageInfo.hasNextPage) break;
      after = page.tasks.pageInfo.endCursor;
      check(pages < 50, "paging ends", page.tasks.pageInfo);
    }
    check(new Set(ids).size === TASKS, `paging finds ${TASKS} distinct tasks`, ids);

    const csv = importCsv(project.id, tag);
    const file = new File([csv.text], "tasks.csv", { type: "text/csv" });
    const preflight = { Authorization: `Bearer ${token}`, "Apollo-Require-Preflight": "true" };
    const uploaded = await client
      .mutation(IMPORT_TASKS, { file }, { fetchOptions: { headers: preflight } })
      .toPromise();
    const job = dataOf(uploaded, "importTasks").importTasks;
    check(job.status === "QUEUED", "the upload queues a job", job);

    // urql ends a subscription's source when the server completes it.
    const events = await collect((observer) => {
      const { unsubscribe } = pipe(
        client.subscription(IMPORT_PROGRESS, { id: job.id }),
        onEnd(() => observer.complete()),
        subscribe((result) => observer.next(result)),
      );
      return unsubscribe;
    });
    const jobs = events.map((event) => dataOf(event, "importJobProgress").importJobProgress);
    const last = jobs.at(-1);
    check(
      last.status === "SUCCEEDED" && last.rowsImported === csv.good && last.rowsFailed === csv.bad,
      "the job imported the good rows and rejected the bad one",
      jobs,
    );
    const report = await checkErrorReport(server.base, last.errorReportUrl, csv);

    // taskEvents: an updateTask arrives as an UPDATED event over the same graphql-ws client.
    let pokes = 0;
    const live = await firstEvent(
      (observer) => {
        const { unsubscribe } = pipe(
          client.subscription(TASK_EVENTS, { projectId: project.id }),
          subscribe((result) => observer.next(result)),
        );
        return unsubscribe;
      },
      async () => {
        const input = { id: ids[0], title: `${tag} live ${++pokes}` };
        dataOf(await client.mutation(UPDATE_TASK, { input }).toPromise(), "updateTask");
      },
      (result) => result.data?.taskEvents?.taskId === ids[0],
    );
    const taskEvent = dataOf(live, "taskEvents").taskEvents;
    check(taskEvent.task?.title?.startsWith(`${tag} live`), "the event carries the task", taskEvent);
    return {
      events: { kind: taskEvent.kind, changedFields: taskEvent.changedFields },
      me: me.email,
      projectId: project.id,
      tasksCreated: TASKS,
      paging: { pages, ids: ids.length, distinct: new Set(ids).size },
      subscription: { events: jobs.length, status: last.status, rowsImported: last.rowsImported },
      // urql sends short queries as GET, mutations (and the upload) as POST.
      httpMethods: {
        GET: recorder.requests.filter((request) => request.method === "GET").length,
        POST: recorder.requests.filter((request) => request.method === "POST").length,
      },
      report,
    };
  } finally {
    await ws.dispose();
  }
}

run("urql", scenario);
