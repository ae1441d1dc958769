// Lists and calls tools of an mcp-sse service with the official MCP TypeScript SDK.
// usage: node client.mjs BASE_URL sse|http TOOL JSON_ARGS [TOKEN]
// Prints one JSON object: {protocolVersion, serverName, tools: [...], result: {...}}.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [baseUrl, transportName, tool, argsJson, token] = process.argv.slice(2);
const headers = token ? { Authorization: `Bearer ${token}` } : {};
const transport =
  transportName === "sse"
    ? new SSEClientTransport(new URL(`${baseUrl}/sse`), {
        requestInit: { headers },
        eventSourceInit: { fetch: (url, init) => fetch(url, { ...init, headers: { ...init?.headers, ...headers } }) },
      })
    : new StreamableHTTPClientTransport(new URL(`${baseUrl}/mcp`), { requestInit: { headers } });

const client = new Client({ name: "mcp-sse-ts-test", version: "1.0.0" });
try {
  await client.connect(transport);
  const tools = [];
  let cursor;
  do {
    const page = await client.listTools(cursor ? { cursor } : {});
    tools.push(...page.tools);
    cursor = page.nextCursor;
  } while (cursor);
  const result = await client.callTool({ name: tool, arguments: JSON.parse(argsJson) });
  console.log(
    JSON.stringify({
      protocolVersion: transport.protocolVersion ?? null,
      serverName: client.getServerVersion()?.name,
      tools,
      result,
    }),
  );
} finally {
  await client.close();
}
