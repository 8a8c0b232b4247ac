import { routeGrpcJsLogs, scrubGrpcJsMessage } from '../../src/grpc/grpc-js-logs';
import { createLogger } from '../../src/logging';
import { rawGrpcCall } from '../helpers/raw-http2';
import { LogCapture, registerAndLogin, startTestServer } from '../helpers/server';

describe('grpc-js diagnostics', () => {
  test.each([
    {
      name: 'metadata entry with a token',
      text: 'Failed to add metadata entry authorization: Bearer\teyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl. Metadata string value "Bearer\teyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl" contains illegal characters.',
      want: 'Failed to add metadata entry authorization: [redacted]. Metadata string value "[redacted]" contains illegal characters.',
    },
    { name: 'a refresh token', text: 'something rt2_abcdefghijklmnop happened', want: 'something [redacted] happened' },
    { name: 'nothing secret', text: 'Server bound to 127.0.0.1:5000', want: 'Server bound to 127.0.0.1:5000' },
  ])('scrubs $name', ({ text, want }) => expect(scrubGrpcJsMessage(text)).toBe(want));

  test('an illegal authorization value reaches the log scrubbed, never the token', async () => {
    const server = await startTestServer();
    const capture = new LogCapture();
    routeGrpcJsLogs(createLogger('info', capture));
    try {
      const { accessToken } = await registerAndLogin(server);
      await rawGrpcCall(server.address, '/auth.v1.SecureService/WhoAmI', { authorization: `Bearer\t${accessToken}` });
      expect(capture.entries).toContainEqual(expect.objectContaining({ level: 'warn', event: 'grpc_js', detail: expect.stringContaining('[redacted]') }));
      expect(capture.text).not.toContain(accessToken.split('.')[2]);
    } finally {
      await server.close();
    }
  });
});
