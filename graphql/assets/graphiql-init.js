// Starts GraphiQL on the page's #graphiql element against the endpoint in
// its data-endpoint attribute, resolved against the page's own URL (so the
// page works behind a path prefix too). Part of slate, not fetched.
(function () {
  'use strict';
  var root = document.getElementById('graphiql');
  var url = new URL(root.dataset.endpoint, window.location.href);
  var ws = new URL(url.href);
  ws.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  var fetcher = GraphiQL.createFetcher({ url: url.href, subscriptionUrl: ws.href });
  ReactDOM.createRoot(root).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: root.dataset.defaultQuery,
      isHeadersEditorEnabled: true,
      inputValueDeprecation: true
    })
  );
})();
