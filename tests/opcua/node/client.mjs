#!/usr/bin/env node
// node-opcua client harness: an OPC UA stack independent of asyncua, driven by the Python tests.
//
//   node client.mjs '<json command>'      (or the JSON on stdin, or as argument "-")
//
// Prints one JSON result line on stdout and exits 0, also when the OPC UA side failed:
// {"ok": false, "stage": "connect"|"session"|"command", "error": ..., "statusCode": "Bad..."|null}.
// Exit 2: the command itself is invalid ({"ok": false, "usage": true, ...}); exit 1: a crash. With "events": true, progress lines {"event": ...} come first
// (subscribe: "subscribed", then one "notification" per data change); the result is the last line.
// Everything node-opcua prints itself goes to stderr. Command shapes: see tests/opcua/nodeopcua.py.

import fs from "node:fs";
import os from "node:os";
import path from "node:path";

// node-opcua logs (e.g. its Node-version warning) through console.log: keep stdout for JSON only.
const writeStdout = process.stdout.write.bind(process.stdout);
for (const name of ["log", "info", "debug", "warn"]) {
    console[name] = (...args) => console.error(...args);
}
const emit = (obj) => writeStdout(`${JSON.stringify(obj)}\n`);

class UsageError extends Error {}

const opcua = await import("node-opcua");
const crypto = await import("node-opcua-crypto");
const {
    AttributeIds,
    BrowseDirection,
    DataType,
    DataTypeIds,
    LocalizedText,
    MessageSecurityMode,
    NodeClass,
    NodeId,
    ExpandedNodeId,
    OPCUACertificateManager,
    OPCUAClient,
    QualifiedName,
    ReferenceTypeIds,
    SecurityPolicy,
    StatusCode,
    TimestampsToReturn,
    UserTokenType,
    Variant,
    VariantArrayType,
    ObjectTypeIds,
    VariableTypeIds,
    resolveNodeId,
} = opcua;

// ---------------------------------------------------------------- input

async function readCommand() {
    const arg = process.argv[2];
    let text = arg;
    if (arg === undefined || arg === "-") {
        const chunks = [];
        for await (const chunk of process.stdin) chunks.push(chunk);
        text = Buffer.concat(chunks).toString("utf8");
    }
    try {
        const cmd = JSON.parse(text);
        if (typeof cmd !== "object" || cmd === null || Array.isArray(cmd)) throw new Error("not an object");
        return cmd;
    } catch (err) {
        throw new UsageError(`command is not a JSON object: ${err.message}`);
    }
}

// ---------------------------------------------------------------- names and ids

const reverse = (table) => Object.fromEntries(Object.entries(table).map(([k, v]) => [v, k]));
const ns0TypeNames = { ...reverse(ObjectTypeIds), ...reverse(VariableTypeIds), ...reverse(DataTypeIds) };
const referenceTypeNames = reverse(ReferenceTypeIds);

function ns0Name(nodeId) {
    return nodeId && nodeId.namespace === 0 && typeof nodeId.value === "number"
        ? ns0TypeNames[nodeId.value] ?? null
        : null;
}

function statusName(statusCode) {
    if (statusCode === undefined || statusCode === null) return null;
    return statusCode.name ?? String(statusCode);
}

function statusFromError(err) {
    const candidates = [err?.statusCode, err?.response?.responseHeader?.serviceResult];
    for (const sc of candidates) if (sc && typeof sc.name === "string") return sc.name;
    const match = /\b(Bad[A-Za-z]+|Uncertain[A-Za-z]+)\b/.exec(String(err?.message ?? err));
    return match ? match[1] : null;
}

/** Parses a NodeId: "i=85", "ns=2;s=x", "nsu=urn:icsbridge;s=x" (resolved here) or a name ("ObjectsFolder"). */
function parseNodeId(text, namespaces) {
    if (typeof text !== "string" || !text) throw new UsageError(`bad nodeId ${JSON.stringify(text)}`);
    const m = /^nsu=([^;]*);(.*)$/s.exec(text);
    if (m) {
        const index = namespaces.indexOf(m[1]);
        if (index < 0) {
            const err = new Error(`namespace ${m[1]} not in the server's namespace array`);
            err.statusCode = opcua.StatusCodes.BadNodeIdUnknown;
            throw err;
        }
        text = `ns=${index};${m[2]}`;
    }
    try {
        return resolveNodeId(text);
    } catch (err) {
        throw new UsageError(`bad nodeId ${JSON.stringify(text)}: ${err.message}`);
    }
}

/** A QualifiedName: "Name" (ns 0), "2:Name" or "nsu=urn:icsbridge;Name". */
function parseQualifiedName(text, namespaces) {
    const m = /^nsu=([^;]*);(.*)$/s.exec(text);
    if (m) {
        const index = namespaces.indexOf(m[1]);
        if (index < 0) throw new Error(`namespace ${m[1]} not in the server's namespace array`);
        return new QualifiedName({ namespaceIndex: index, name: m[2] });
    }
    const n = /^(\d+):(.*)$/s.exec(text);
    if (n) return new QualifiedName({ namespaceIndex: Number(n[1]), name: n[2] });
    return new QualifiedName({ namespaceIndex: 0, name: text });
}

/** The usual string form: "i=85" in namespace 0, "ns=2;s=x" elsewhere; null for the null NodeId. */
function idString(id) {
    if (!id) return null;
    if (id.namespace === 0 && id.value === 0 && !id.namespaceUri) return null;
    return id.toString().replace(/^ns=0;/, "");
}

// ---------------------------------------------------------------- values to JSON

function int64ToJson(pair, signed) {
    if (!Array.isArray(pair) || pair.length !== 2) return toJson(pair);
    let big = (BigInt(pair[0] >>> 0) << 32n) | BigInt(pair[1] >>> 0);
    if (signed && pair[0] & 0x80000000) big -= 1n << 64n;
    return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER)
        ? Number(big)
        : big.toString();
}

function toJson(v) {
    if (v === undefined || v === null) return null;
    if (typeof v === "number") return Number.isFinite(v) ? v : String(v); // "NaN", "Infinity"
    if (typeof v === "bigint") return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
    if (typeof v === "boolean" || typeof v === "string") return v;
    if (Buffer.isBuffer(v)) return v.toString("base64");
    if (v instanceof Date) return Number.isNaN(v.getTime()) ? null : v.toISOString();
    if (ArrayBuffer.isView(v)) return Array.from(v, toJson);
    if (Array.isArray(v)) return v.map(toJson);
    if (v instanceof NodeId || v instanceof ExpandedNodeId) return idString(v) ?? "i=0";
    if (v instanceof LocalizedText) return { text: v.text ?? null, locale: v.locale ?? null };
    if (v instanceof QualifiedName) return v.toString();
    if (v instanceof StatusCode) return v.name;
    if (v instanceof Variant) return variantValue(v);
    if (v.schema && Array.isArray(v.schema.fields)) {
        const out = {};
        for (const field of v.schema.fields) {
            const name = field.name[0].toLowerCase() + field.name.slice(1);
            out[name] = toJson(v[name]);
        }
        return out;
    }
    if (typeof v === "object") {
        const out = {};
        for (const [k, x] of Object.entries(v)) out[k] = toJson(x);
        return out;
    }
    return String(v);
}

function variantValue(variant) {
    if (!variant || variant.dataType === DataType.Null) return null;
    const { dataType, value } = variant;
    if (dataType === DataType.Int64 || dataType === DataType.UInt64) {
        const signed = dataType === DataType.Int64;
        if (variant.arrayType === VariantArrayType.Scalar) return int64ToJson(value, signed);
        return Array.from(value ?? [], (x) => int64ToJson(x, signed));
    }
    return toJson(value);
}

function dataValueToJson(dv, attributeId) {
    const variant = dv.value;
    const out = {
        statusCode: statusName(dv.statusCode),
        value: variantValue(variant),
        dataType: variant ? DataType[variant.dataType] : null,
        arrayType: variant ? VariantArrayType[variant.arrayType] : null,
        sourceTimestamp: toJson(dv.sourceTimestamp),
        serverTimestamp: toJson(dv.serverTimestamp),
    };
    const inner = variant?.value;
    if (variant?.dataType === DataType.ExtensionObject && inner?.schema?.name) out.typeName = inner.schema.name;
    if (attributeId === AttributeIds.NodeClass && typeof out.value === "number") out.value = NodeClass[out.value];
    if (attributeId === AttributeIds.DataType && variant?.value instanceof NodeId) {
        out.dataTypeName = ns0Name(variant.value);
    }
    return out;
}

// ---------------------------------------------------------------- values from JSON

function toVariant(value, dataTypeName) {
    const dataType = DataType[dataTypeName];
    if (typeof dataType !== "number") throw new UsageError(`unknown dataType ${JSON.stringify(dataTypeName)}`);
    const convert = (x) => {
        switch (dataType) {
            case DataType.DateTime:
                return new Date(x);
            case DataType.ByteString:
                return Buffer.from(x, "base64");
            case DataType.LocalizedText:
                return typeof x === "string" ? new LocalizedText({ text: x }) : new LocalizedText(x);
            case DataType.NodeId:
                return resolveNodeId(x);
            case DataType.Int64:
            case DataType.UInt64: {
                const big = BigInt.asUintN(64, BigInt(x));
                return [Number(big >> 32n), Number(big & 0xffffffffn)];
            }
            default:
                return x;
        }
    };
    if (Array.isArray(value)) {
        return new Variant({ dataType, arrayType: VariantArrayType.Array, value: value.map(convert) });
    }
    return new Variant({ dataType, value: convert(value) });
}

// ---------------------------------------------------------------- connection

function securityOf(cmd) {
    const modeName = cmd.securityMode ?? "None";
    const policyName = cmd.securityPolicy ?? (modeName === "None" ? "None" : "Basic256Sha256");
    const securityMode = MessageSecurityMode[modeName];
    const securityPolicy = SecurityPolicy[policyName];
    if (typeof securityMode !== "number") throw new UsageError(`unknown securityMode ${modeName}`);
    if (!securityPolicy) throw new UsageError(`unknown securityPolicy ${policyName}`);
    return { securityMode, securityPolicy };
}

async function withSession(cmd, body) {
    if (typeof cmd.endpoint !== "string") throw new UsageError("endpoint missing");
    const { securityMode, securityPolicy } = securityOf(cmd);
    // A private PKI: trusts whatever server certificate it is shown (tests), and never touches $HOME.
    const pki = cmd.pki ?? fs.mkdtempSync(path.join(os.tmpdir(), "nodeopcua-pki-"));
    const ownPki = cmd.pki === undefined;
    const certificateManager = new OPCUACertificateManager({
        rootFolder: pki,
        automaticallyAcceptUnknownCertificate: true,
    });
    const options = {
        applicationName: cmd.applicationName ?? "icsbridge-test-node-opcua",
        securityMode,
        securityPolicy,
        clientCertificateManager: certificateManager,
        endpointMustExist: cmd.endpointMustExist ?? false,
        connectionStrategy: { maxRetry: cmd.retries ?? 0, initialDelay: 100, maxDelay: 500 },
        requestedSessionTimeout: cmd.sessionTimeout ?? 60000,
        defaultTransactionTimeout: cmd.requestTimeout ?? 15000,
    };
    if (cmd.certificate) {
        if (!cmd.privateKey) throw new UsageError("certificate given without privateKey");
        options.certificateFile = path.resolve(cmd.certificate);
        options.privateKeyFile = path.resolve(cmd.privateKey);
        // The ApplicationUri sent in CreateSession must match the certificate's SubjectAltName URI.
        const info = crypto.exploreCertificate(crypto.readCertificate(options.certificateFile));
        const uri = info.tbsCertificate.extensions?.subjectAltName?.uniformResourceIdentifier?.[0];
        if (uri && !cmd.applicationUri) options.applicationUri = uri;
    }
    if (cmd.applicationUri) options.applicationUri = cmd.applicationUri;

    const userIdentity =
        cmd.user !== undefined
            ? { type: UserTokenType.UserName, userName: cmd.user, password: cmd.password ?? "" }
            : { type: UserTokenType.Anonymous };

    const client = OPCUAClient.create(options);
    let session = null;
    let stage = "connect";
    try {
        await client.connect(cmd.endpoint);
        stage = "session";
        session = await client.createSession(userIdentity);
        stage = "command";
        const namespaces = (await session.readNamespaceArray()).slice();
        const result = await body(session, namespaces);
        return { ok: true, namespaces, ...result };
    } catch (err) {
        if (err && typeof err === "object") err.stage ??= stage;
        throw err;
    } finally {
        if (session) await session.close().catch(() => {});
        await client.disconnect().catch(() => {});
        await certificateManager.dispose?.().catch?.(() => {});
        if (ownPki) fs.rmSync(pki, { recursive: true, force: true });
    }
}

// ---------------------------------------------------------------- commands

async function browseAll(session, nodeId) {
    const description = {
        nodeId,
        browseDirection: BrowseDirection.Forward,
        referenceTypeId: ReferenceTypeIds.HierarchicalReferences,
        includeSubtypes: true,
        nodeClassMask: 0,
        resultMask: 0x3f,
    };
    let result = await session.browse(description);
    if (!result.statusCode.isGood()) {
        const err = new Error(`browse ${nodeId}: ${result.statusCode.name}`);
        err.statusCode = result.statusCode;
        throw err;
    }
    const refs = [...(result.references ?? [])];
    while (result.continuationPoint && result.continuationPoint.length) {
        [result] = await session.browseNext([result.continuationPoint], false);
        refs.push(...(result.references ?? []));
    }
    return refs;
}

async function cmdBrowse(session, namespaces, cmd) {
    const start = parseNodeId(cmd.nodeId ?? "ObjectsFolder", namespaces);
    const depth = cmd.depth ?? 1;
    const [bn, dn, nc] = await session.read([
        { nodeId: start, attributeId: AttributeIds.BrowseName },
        { nodeId: start, attributeId: AttributeIds.DisplayName },
        { nodeId: start, attributeId: AttributeIds.NodeClass },
    ]);
    if (!nc.statusCode.isGood()) {
        const err = new Error(`browse start ${start}: ${nc.statusCode.name}`);
        err.statusCode = nc.statusCode;
        throw err;
    }
    const root = {
        nodeId: idString(start),
        browseName: bn.value.value?.toString() ?? null,
        displayName: dn.value.value?.text ?? null,
        nodeClass: NodeClass[nc.value.value],
        typeDefinition: null,
        typeDefinitionName: null,
        referenceType: null,
        path: [],
        children: [],
    };
    const nodes = [];
    const seen = new Set([root.nodeId]);
    const walk = async (node, nodeId, level) => {
        if (level >= depth) return;
        for (const ref of await browseAll(session, nodeId)) {
            const id = idString(ref.nodeId);
            const child = {
                nodeId: id,
                browseName: ref.browseName.toString(),
                displayName: ref.displayName?.text ?? null,
                nodeClass: NodeClass[ref.nodeClass],
                typeDefinition: idString(ref.typeDefinition),
                typeDefinitionName: ns0Name(ref.typeDefinition),
                referenceType:
                    (ref.referenceTypeId.namespace === 0 && referenceTypeNames[ref.referenceTypeId.value]) ||
                    idString(ref.referenceTypeId),
                path: [...node.path, ref.browseName.toString()],
                children: [],
            };
            node.children.push(child);
            const { children, ...flat } = child;
            nodes.push({ ...flat, parent: node.nodeId });
            if (!seen.has(id) && ref.nodeId.serverIndex === 0 && !ref.nodeId.namespaceUri) {
                seen.add(id);
                await walk(child, ref.nodeId, level + 1);
            }
        }
    };
    await walk(root, start, 0);
    return { tree: root, nodes };
}

async function cmdRead(session, namespaces, cmd) {
    const items = cmd.items ?? [];
    if (!Array.isArray(items) || !items.length) throw new UsageError("read needs items: [{nodeId, attribute?, path?}]");
    const entries = items.map((item) => {
        const attribute = item.attribute ?? "Value";
        const attributeId = AttributeIds[attribute];
        if (typeof attributeId !== "number") throw new UsageError(`unknown attribute ${attribute}`);
        return { item, attribute, attributeId, nodeId: parseNodeId(item.nodeId, namespaces), resolved: true };
    });
    // Items with a browse path (e.g. ["EURange"]) are resolved by TranslateBrowsePathsToNodeIds first.
    const withPath = entries.filter((e) => e.item.path?.length);
    if (withPath.length) {
        const translated = await session.translateBrowsePath(
            withPath.map((e) => ({
                startingNode: e.nodeId,
                relativePath: {
                    elements: e.item.path.map((name) => ({
                        referenceTypeId: ReferenceTypeIds.HierarchicalReferences,
                        isInverse: false,
                        includeSubtypes: true,
                        targetName: parseQualifiedName(name, namespaces),
                    })),
                },
            })),
        );
        translated.forEach((t, i) => {
            withPath[i].pathStatus = t.statusCode;
            withPath[i].resolved = t.statusCode.isGood() && t.targets?.length > 0;
            if (withPath[i].resolved) withPath[i].nodeId = t.targets[0].targetId;
        });
    }
    const readable = entries.filter((e) => e.resolved);
    const dataValues = readable.length
        ? await session.read(
              readable.map((e) => ({ nodeId: e.nodeId, attributeId: e.attributeId })),
              cmd.maxAge ?? 0,
          )
        : [];
    readable.forEach((e, i) => {
        e.dataValue = dataValues[i];
    });
    const results = entries.map((e) => {
        const base = {
            nodeId: e.item.nodeId,
            resolvedNodeId: e.resolved ? idString(e.nodeId) : null,
            attribute: e.attribute,
            ...(e.item.path ? { path: e.item.path } : {}),
        };
        if (e.dataValue === undefined) {
            return { ...base, statusCode: statusName(e.pathStatus), value: null, dataType: null, sourceTimestamp: null };
        }
        return { ...base, ...dataValueToJson(e.dataValue, e.attributeId) };
    });
    return { results };
}

/** One WriteRequest: {nodeId, value, dataType, attribute?} -> {statusCode}, or items: [...] -> {results}. */
async function cmdWrite(session, namespaces, cmd) {
    const items = cmd.items ?? [cmd];
    if (!Array.isArray(items) || !items.length) throw new UsageError("write needs items");
    const writes = items.map((item) => {
        if (!("value" in item) || !item.dataType) throw new UsageError("write needs nodeId, value, dataType");
        const attribute = item.attribute ?? "Value";
        const attributeId = AttributeIds[attribute];
        if (typeof attributeId !== "number") throw new UsageError(`unknown attribute ${attribute}`);
        const nodeId = parseNodeId(item.nodeId, namespaces);
        return { nodeId, attributeId, value: { value: toVariant(item.value, item.dataType) } };
    });
    const statusCodes = await session.write(writes);
    const results = items.map((item, i) => ({
        nodeId: item.nodeId,
        resolvedNodeId: idString(writes[i].nodeId),
        statusCode: statusName(statusCodes[i]),
    }));
    return cmd.items ? { results } : results[0];
}

async function cmdSubscribe(session, namespaces, cmd) {
    const ids = cmd.nodeIds ?? (cmd.nodeId ? [cmd.nodeId] : []);
    if (!ids.length) throw new UsageError("subscribe needs nodeIds");
    if (cmd.count === undefined && cmd.duration === undefined) throw new UsageError("subscribe needs count or duration");
    const interval = cmd.publishingInterval ?? 100;
    const subscription = await session.createSubscription2({
        requestedPublishingInterval: interval,
        requestedLifetimeCount: 100,
        requestedMaxKeepAliveCount: 10,
        maxNotificationsPerPublish: 0,
        publishingEnabled: true,
        priority: 1,
    });
    const notifications = [];
    const items = [];
    let finish;
    const done = new Promise((resolve) => {
        finish = resolve;
    });
    const timer = cmd.duration !== undefined ? setTimeout(() => finish("duration"), cmd.duration) : null;
    try {
        for (const text of ids) {
            const nodeId = parseNodeId(text, namespaces);
            try {
                const item = await subscription.monitor(
                    { nodeId, attributeId: AttributeIds.Value },
                    { samplingInterval: cmd.samplingInterval ?? interval, queueSize: cmd.queueSize ?? 10, discardOldest: true },
                    TimestampsToReturn.Both,
                );
                items.push({ nodeId: text, resolvedNodeId: idString(nodeId), statusCode: statusName(item.statusCode) });
                item.on("changed", (dv) => {
                    if (cmd.count !== undefined && notifications.length >= cmd.count) return;
                    const n = { nodeId: text, ...dataValueToJson(dv, AttributeIds.Value) };
                    notifications.push(n);
                    if (cmd.events) emit({ event: "notification", ...n });
                    if (cmd.count !== undefined && notifications.length >= cmd.count) finish("count");
                });
            } catch (err) {
                items.push({ nodeId: text, resolvedNodeId: idString(nodeId), statusCode: statusFromError(err) ?? "Bad", error: err.message });
            }
        }
        if (cmd.events) emit({ event: "subscribed", items });
        if (!items.some((i) => i.statusCode === "Good")) finish("no monitored item");
        const reason = await done;
        return {
            reason,
            revisedPublishingInterval: subscription.publishingInterval,
            items,
            notifications,
        };
    } finally {
        if (timer) clearTimeout(timer);
        await subscription.terminate().catch(() => {});
    }
}

async function cmdNamespaces() {
    return {};
}

const commands = {
    browse: cmdBrowse,
    read: cmdRead,
    write: cmdWrite,
    subscribe: cmdSubscribe,
    namespaces: cmdNamespaces,
};

// ---------------------------------------------------------------- main

let exitCode = 0;
try {
    const cmd = await readCommand();
    const run = commands[cmd.command];
    if (!run) throw new UsageError(`unknown command ${JSON.stringify(cmd.command)}; one of ${Object.keys(commands)}`);
    let result;
    try {
        result = await withSession(cmd, (session, namespaces) => run(session, namespaces, cmd));
    } catch (err) {
        if (err instanceof UsageError) throw err;
        result = { ok: false, stage: err.stage ?? null, error: err.message, statusCode: statusFromError(err) };
    }
    emit({ command: cmd.command, ...result });
} catch (err) {
    if (err instanceof UsageError) {
        emit({ ok: false, error: err.message, statusCode: null, usage: true });
        exitCode = 2;
    } else {
        console.error(err);
        exitCode = 1;
    }
}
// node-opcua may leave timers behind: do not wait for them.
process.stdout.write("", () => process.exit(exitCode));
