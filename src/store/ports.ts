/**
 * How a backend's facade becomes every port at once. Each port of a backend is a class of its own
 * file (`users.ts`, `sessions.ts`, ...) extending the backend's base (its tables, pool or
 * connection), holding methods only: all state lives in the base. The facade extends the base
 * too, lists its ports once, and gets their methods, so adding a port is a new file and one line.
 */

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type PortClass = abstract new (...args: any[]) => object;

type UnionToIntersection<U> = (U extends unknown ? (k: U) => void : never) extends (k: infer I) => void ? I : never;

/** The instance type of every port of a list: what the facade's interface extends. */
export type PortsOf<T extends readonly PortClass[]> = UnionToIntersection<InstanceType<T[number]>>;

/** Puts every method of `ports` on the facade's prototype; a name two ports (or the facade) define is a wiring bug. */
export function withPorts(facade: { readonly prototype: object; readonly name: string }, ports: readonly PortClass[]): void {
  for (const port of ports) {
    for (const name of Object.getOwnPropertyNames(port.prototype)) {
      if (name === 'constructor') continue;
      if (Object.prototype.hasOwnProperty.call(facade.prototype, name)) throw new Error(`${facade.name}: ${name} is defined by two of its ports`);
      Object.defineProperty(facade.prototype, name, Object.getOwnPropertyDescriptor(port.prototype, name)!);
    }
  }
}
