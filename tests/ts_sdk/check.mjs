// Composio's TypeScript SDK (@composio/core) against the Composio emulator, unchanged:
// create a tool router session, read it back, list its toolkits and the catalog, delete it.
// COMPOSIO_BASE_URL and COMPOSIO_API_KEY name the emulator; run by tests/composio/test_ts_sdk.py.
// Prints one JSON line of what it saw; exits non-zero (with the error) on any failure.
import { Composio } from "@composio/core";

const baseURL = process.env.COMPOSIO_BASE_URL;
const apiKey = process.env.COMPOSIO_API_KEY;
if (!baseURL || !apiKey) {
  console.error("COMPOSIO_BASE_URL and COMPOSIO_API_KEY must be set");
  process.exit(2);
}

// No telemetry, and no look-up of the latest version on the npm registry at start.
const composio = new Composio({ apiKey, baseURL, allowTracking: false, disableVersionCheck: true });
const seen = {};

const session = await composio.create("ts_user_1", { toolkits: ["github", "gmail"] });
seen.created = { sessionId: session.sessionId, mcpUrl: session.mcp?.url ?? null };

const fetched = await composio.toolRouter.use(session.sessionId);
seen.fetched = { sessionId: fetched.sessionId };

const toolkits = await fetched.toolkits();
seen.sessionToolkits = toolkits.items.map((item) => item.slug);

const catalog = await composio.toolkits.get({ limit: 5 });
seen.catalog = catalog.map((toolkit) => toolkit.slug);

const github = await composio.toolkits.get("github");
seen.github = github.slug;

const categories = await composio.toolkits.listCategories();
seen.categories = categories.items.length;

seen.deleted = await composio.toolRouter.delete(session.sessionId);

console.log(JSON.stringify(seen));
