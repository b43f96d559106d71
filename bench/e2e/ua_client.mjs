#!/usr/bin/env node
// An OPC UA client for the bench (node-opcua), one command per stdin line, one JSON answer each.
//
//   node bench/e2e/ua_client.mjs ENDPOINT
//
// node-opcua comes from the test harness's install (tests/opcua/node, `npm ci` there).
// Notifications are counted from the subscription's raw PublishResponses, without a handler
// per monitored item, so the client is not what limits the rate.
//
// - subscribe FILE NAMESPACE TIMEOUT [INTERVAL]: monitor the Value of every node id in FILE
//   (string ids, one a line, in namespace URI NAMESPACE) in batches, in one subscription
//   publishing every INTERVAL ms (default 100); wait until every item sent its initial
//   value -> subscribed, initial, seconds, bad (items the server refused).
// - watch ID...: remember the newest value of these nodes.
// - track FILE: only notifications of the node ids in FILE count for `quiet`.
// - window: start counting afresh -> time.
// - report: notifications since `window`, their latency (arrival - SourceTimestamp, ms).
// - quiet SECONDS TIMEOUT: wait until no tracked notification came for SECONDS -> last (arrival).
// - check: read every watched node now -> read, monitored.

import fs from "node:fs";
import path from "node:path";
import readline from "node:readline";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const harness = path.resolve(here, "../../tests/opcua/node/package.json");
const writeStdout = process.stdout.write.bind(process.stdout);
for (const name of ["log", "info", "debug", "warn"]) console[name] = (...args) => console.error(...args);
const {
    AttributeIds,
    MessageSecurityMode,
    OPCUAClient,
    SecurityPolicy,
    TimestampsToReturn,
} = createRequire(harness)("node-opcua");

const BATCH = 5000;
const emit = (obj) => writeStdout(`${JSON.stringify(obj)}\n`);
const now = () => (performance.timeOrigin + performance.now()) / 1000;

const state = {
    session: null,
    subscription: null,
    ids: [],
    namespace: 0,
    handles: new Map(), // clientHandle -> index in ids
    early: [], // [notification, arrival] that came before their item's handle was known
    client: null,
    seen: null,
    tracked: null,
    initial: 0,
    latencies: [],
    start: now(),
    last: 0,
    watched: new Map(), // index -> node id
    newest: new Map(), // index -> value
};

function onNotification(message, arrival = now()) {
    for (const data of message.notificationData ?? []) {
        for (const item of data.monitoredItems ?? []) {
            const index = state.handles.get(item.clientHandle);
            if (index === undefined) state.early.push([item, arrival]);
            else count(index, item.value, arrival);
        }
    }
}

/** Tally one notification of the item at `index` that arrived at `arrival` (s). */
function count(index, value, arrival) {
    const source = value.sourceTimestamp;
    if (source) {
        const stamp = source.getTime() / 1000 + (value.sourcePicoseconds ?? 0) / 1e12;
        state.latencies.push(arrival - stamp);
    }
    if (state.tracked[index]) state.last = arrival;
    if (!state.seen[index]) {
        state.seen[index] = 1;
        state.initial += 1;
    }
    if (state.watched.has(index)) state.newest.set(index, value.value?.value ?? null);
}

async function connect(endpoint) {
    const client = OPCUAClient.create({
        applicationName: "icsbridge-bench",
        securityMode: MessageSecurityMode.None,
        securityPolicy: SecurityPolicy.None,
        endpointMustExist: false,
        connectionStrategy: { maxRetry: 3, initialDelay: 200, maxDelay: 1000 },
        requestedSessionTimeout: 600000,
        defaultTransactionTimeout: 300000,
    });
    await client.connect(endpoint);
    state.client = client;
    state.session = await client.createSession();
}

const wait = (done, seconds) =>
    new Promise((resolve) => {
        const deadline = Date.now() + seconds * 1000;
        const tick = () => (done() || Date.now() > deadline ? resolve() : setTimeout(tick, 5));
        tick();
    });

async function subscribe(file, namespace, timeout, interval) {
    const start = now();
    state.ids = fs.readFileSync(file, "utf8").split("\n").filter(Boolean);
    state.seen = new Uint8Array(state.ids.length);
    state.tracked = new Uint8Array(state.ids.length).fill(1);
    state.namespace = (await state.session.readNamespaceArray()).indexOf(namespace);
    const subscription = await state.session.createSubscription2({
        requestedPublishingInterval: interval,
        requestedLifetimeCount: 6000,
        requestedMaxKeepAliveCount: 20,
        maxNotificationsPerPublish: 0,
        publishingEnabled: true,
        priority: 1,
    });
    state.subscription = subscription;
    subscription.on("raw_notification", onNotification);
    const parameters = { samplingInterval: 0, queueSize: 100, discardOldest: true };
    let bad = 0;
    for (let first = 0; first < state.ids.length; first += BATCH) {
        const ids = state.ids.slice(first, first + BATCH);
        const items = ids.map((id) => ({ nodeId: `ns=${state.namespace};s=${id}`, attributeId: AttributeIds.Value }));
        const group = await subscription.monitorItems(items, parameters, TimestampsToReturn.Both);
        group.monitoredItems.forEach((item, offset) => {
            state.handles.set(item.monitoringParameters.clientHandle, first + offset);
            if (item.statusCode && !item.statusCode.isGood()) bad += 1;
        });
        const early = state.early;
        state.early = [];
        for (const [item, arrival] of early) onNotification({ notificationData: [{ monitoredItems: [item] }] }, arrival);
    }
    const wanted = state.ids.length - bad;
    await wait(() => state.initial >= wanted, timeout - (now() - start));
    return { subscribed: state.ids.length - bad, bad, initial: state.initial, seconds: now() - start };
}

function percentiles(latencies) {
    if (!latencies.length) return { p50: null, p99: null, max: null };
    const ordered = Float64Array.from(latencies).sort();
    const last = ordered.length - 1;
    return {
        p50: ordered[Math.floor(last / 2)] * 1e3,
        p99: ordered[Math.floor(last * 0.99)] * 1e3,
        max: ordered[last] * 1e3,
    };
}

function report() {
    const latencies = state.latencies;
    const end = now();
    state.latencies = [];
    const seconds = end - state.start;
    return { events: latencies.length, seconds, rate: latencies.length / seconds, ...percentiles(latencies) };
}

async function check() {
    const indices = [...state.watched.keys()];
    const results = await state.session.read(
        indices.map((i) => ({ nodeId: `ns=${state.namespace};s=${state.ids[i]}`, attributeId: AttributeIds.Value })),
    );
    const read = {};
    const monitored = {};
    indices.forEach((i, k) => {
        read[state.ids[i]] = results[k].value?.value ?? null;
        monitored[state.ids[i]] = state.newest.get(i) ?? null;
    });
    return { read, monitored };
}

async function run(line) {
    const [command, ...args] = line.trim().split(/\s+/);
    switch (command) {
        case "subscribe":
            return subscribe(args[0], args[1], Number(args[2]), Number(args[3] ?? 100));
        case "watch": {
            const where = new Map(state.ids.map((id, i) => [id, i]));
            state.watched = new Map(args.filter((id) => where.has(id)).map((id) => [where.get(id), id]));
            return { watched: state.watched.size };
        }
        case "track": {
            const tracked = new Set(fs.readFileSync(args[0], "utf8").split("\n").filter(Boolean));
            state.tracked = Uint8Array.from(state.ids, (id) => (tracked.has(id) ? 1 : 0));
            return { tracked: tracked.size };
        }
        case "window":
            state.latencies = [];
            state.start = now();
            return { time: state.start };
        case "report":
            return report();
        case "quiet": {
            const gap = Number(args[0]);
            await wait(() => now() - state.last >= gap, Number(args[1]));
            return { last: state.last, quiet: now() - state.last >= gap };
        }
        case "check":
            return check();
        default:
            throw new Error(`unknown command ${command}`);
    }
}

try {
    await connect(process.argv[2]);
    emit({ ready: true });
} catch (err) {
    emit({ ready: false, error: String(err?.message ?? err) });
    process.exit(1);
}
const input = readline.createInterface({ input: process.stdin });
let queue = Promise.resolve();
input.on("line", (line) => {
    if (!line.trim()) return;
    queue = queue.then(async () => {
        try {
            emit(await run(line));
        } catch (err) {
            emit({ error: String(err?.message ?? err) });
        }
    });
});
input.on("close", () => queue.then(() => process.exit(0)));
