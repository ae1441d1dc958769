// The official MCP TypeScript SDK's server with the bench's two tools, noop and read_file of a text file
// under ROOT, over Streamable HTTP at /mcp: stateless (a server and transport per request, as the SDK's
// simpleStatelessStreamableHttp example does) with JSON responses.
// usage: node server.mjs PORT ROOT
import { readFile } from "node:fs/promises";
import path from "node:path";

import { createMcpExpressApp } from "@modelcontextprotocol/sdk/server/express.js";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import * as z from "zod/v4";

const [port, root] = [Number(process.argv[2]), process.argv[3]];

// Structured results, as the Python anchors' pydantic return types give: text content and structuredContent.
const structured = (value) => ({
  content: [{ type: "text", text: JSON.stringify(value) }],
  structuredContent: value,
  isError: false,
});

function build() {
  const server = new McpServer({ name: "reference-ts", version: "1.0.0" });
  server.registerTool(
    "noop",
    { description: "Answer immediately.", outputSchema: { ok: z.boolean() } },
    async () => structured({ ok: true }),
  );
  server.registerTool(
    "read_file",
    {
      description: "Read a text file under the root.",
      inputSchema: { path: z.string() },
      outputSchema: { path: z.string(), content: z.string() },
    },
    async ({ path: relative }) =>
      structured({ path: relative, content: await readFile(path.join(root, relative), "utf8") }),
  );
  return server;
}

const app = createMcpExpressApp();
app.post("/mcp", async (req, res) => {
  const server = build();
  try {
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on("close", () => {
      transport.close();
      server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(req, res, req.body);
  } catch (error) {
    if (!res.headersSent) {
      res.status(500).json({ jsonrpc: "2.0", error: { code: -32603, message: String(error) }, id: null });
    }
  }
});
app.listen(port, "127.0.0.1", (error) => {
  if (error) {
    console.error(error);
    process.exit(1);
  }
});
process.on("SIGTERM", () => process.exit(0));
