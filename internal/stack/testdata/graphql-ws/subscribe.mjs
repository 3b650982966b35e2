// Subscribes to titleChanged(id) with the graphql-ws client over the
// graphql-transport-ws protocol, prints every event as one JSON line, and
// exits 0 once an event has a release on date (or 1 on an error).
//
//   node subscribe.mjs http://127.0.0.1:8080/query <title id> <date>
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const [url, id, date] = process.argv.slice(2);
if (!url || !id || !date) {
  console.error('usage: node subscribe.mjs <url> <title id> <release date>');
  process.exit(2);
}

const client = createClient({
  url: url.replace(/^http/, 'ws'),
  webSocketImpl: WebSocket,
  retryAttempts: 0,
  lazy: false,
  onNonLazyError: (err) => {
    console.error('connection failed:', err?.message ?? err);
    process.exit(1);
  },
});

const query = `subscription($id: ID!) { titleChanged(id: $id) {
  id name version deleted schedule { version releases { territory date } } } }`;

const done = (code) => client.dispose().then(() => process.exit(code));

client.subscribe(
  { query, variables: { id } },
  {
    next: (result) => {
      console.log(JSON.stringify(result));
      const releases = result.data?.titleChanged?.schedule?.flatMap((s) => s.releases) ?? [];
      if (releases.some((r) => r.date === date)) done(0);
    },
    error: (err) => {
      console.error('subscription error:', JSON.stringify(err?.message ?? err));
      done(1);
    },
    complete: () => {
      console.error('subscription completed before a release on', date);
      done(1);
    },
  },
);
