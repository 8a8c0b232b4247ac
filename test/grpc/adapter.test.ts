import { create } from '@bufbuild/protobuf';
import { SecureService, WhoAmIResponseSchema } from '../../gen/auth/v1/auth_pb';
import { frozenMessage, repeatedAnswers, serviceDefinition, unaryHandlers, type UnaryServiceImpl } from '../../src/grpc/adapter';

describe('adapter', () => {
  test('a missing RPC is a compile error and, if forced, a start-up error', () => {
    // @ts-expect-error adminPing is missing: the descriptor demands every RPC.
    const partial: UnaryServiceImpl<typeof SecureService> = { whoAmI: async () => ({}) };
    expect(() => unaryHandlers(SecureService, partial, { callTimeout: 1000 })).toThrow('auth.v1.SecureService.AdminPing has no implementation');
  });

  test('a wrong response type is a compile error', () => {
    const impl: UnaryServiceImpl<typeof SecureService> = {
      // @ts-expect-error userId must be a string.
      whoAmI: async () => ({ userId: 42 }),
      adminPing: async () => ({ message: 'pong' }),
    };
    expect(Object.keys(unaryHandlers(SecureService, impl, { callTimeout: 1000 }))).toEqual(['whoAmI', 'adminPing']);
  });

  test('definitions carry the gRPC paths and Buffer serializers', () => {
    const def = serviceDefinition(SecureService);
    expect(def.whoAmI!.path).toBe('/auth.v1.SecureService/WhoAmI');
    const bytes = def.adminPing!.responseSerialize({ $typeName: 'auth.v1.AdminPingResponse', message: 'pong', userId: 'u' });
    expect(Buffer.isBuffer(bytes)).toBe(true);
    expect(def.adminPing!.responseDeserialize(bytes)).toMatchObject({ message: 'pong', userId: 'u' });
  });

  test('a frozen message is serialized once; a live one every time', () => {
    const def = serviceDefinition(SecureService).whoAmI!;
    const live = create(WhoAmIResponseSchema, { userId: 'u', roles: ['a'] });
    const first = def.responseSerialize(live);
    expect(def.responseSerialize(live)).not.toBe(first);
    live.roles.push('b');
    expect(def.responseDeserialize(def.responseSerialize(live))).toMatchObject({ roles: ['a', 'b'] });

    const frozen = frozenMessage(create(WhoAmIResponseSchema, { userId: 'u', roles: ['a'] }));
    expect(Object.isFrozen(frozen.roles)).toBe(true);
    expect(() => frozen.roles.push('b')).toThrow(TypeError);
    const bytes = def.responseSerialize(frozen);
    expect(def.responseSerialize(frozen)).toBe(bytes);
    expect(def.responseDeserialize(bytes)).toMatchObject({ userId: 'u', roles: ['a'] });
  });
});

describe('repeatedAnswers', () => {
  test('fresh the first time, then one frozen answer for a key that comes back', () => {
    let built = 0;
    const answer = repeatedAnswers((key: { id: string }) => {
      built++;
      return create(WhoAmIResponseSchema, { userId: key.id, roles: ['r'] });
    });
    const a = { id: 'a' };
    const first = answer(a);
    expect(Object.isFrozen(first)).toBe(false);
    const second = answer(a);
    expect(Object.isFrozen(second)).toBe(true);
    expect(answer(a)).toBe(second);
    expect(answer({ id: 'a' })).not.toBe(second); // another key object, however alike
    expect(built).toBe(3);
    expect(second).toMatchObject({ userId: 'a', roles: ['r'] });
  });
});
