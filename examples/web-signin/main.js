'use strict';
// Runs the sign-in page by hand: AUTH_SERVICE=127.0.0.1:50051 PORT=8080 node examples/web-signin/main.js
// (after `npm run build`: the package's own name resolves to its dist/ from inside the repository).
const { createAuthClient } = require('grpc-auth-service/client');
const { createSignInServer } = require('./server.js');

const client = createAuthClient(process.env.AUTH_SERVICE ?? '127.0.0.1:50051');
const port = Number(process.env.PORT ?? 8080);
const server = createSignInServer({ auth: () => client });
server.listen(port, '127.0.0.1', () => console.log(`sign-in page on http://localhost:${server.address().port} (auth service ${process.env.AUTH_SERVICE ?? '127.0.0.1:50051'})`));
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => server.close(() => client.close()));
