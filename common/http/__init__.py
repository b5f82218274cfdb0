"""The HTTP layer, and the only one that imports flask, werkzeug or functions_framework: the endpoint wrapper
and routing, the request guard, auth from headers, the client address, the error envelope (the one table from
domain errors to HTTP statuses and headers), request logs, OpenAPI, the web console, the seeds' routes and
`/healthz`."""
