/** SocketCanLink where SocketCAN is not available (the host; the real tests run in UML, see uml.test.ts). */
import { describe, expect, test } from 'vitest';
import { LinkError } from '../../src/domain/errors.js';
import { SocketCanLink } from '../../src/links/can/socketcan-link.js';

describe('SocketCanLink without SocketCAN', () => {
  test('a missing socketcan package is a LinkError that says where to get it', async () => {
    const link = new SocketCanLink({
      iface: 'can0',
      load: () => {
        throw new LinkError('SocketCAN needs the optional package "socketcan" (docs/install.md)');
      },
    });
    await expect(link.open()).rejects.toThrow(/socketcan.*docs\/install\.md/);
    expect(link.isOpen).toBe(false);
  });

  test('an interface that does not exist is a LinkError, not a crash; send before open rejects', async () => {
    const link = new SocketCanLink({ iface: 'bbnocan9' });
    await expect(link.open()).rejects.toBeInstanceOf(LinkError);
    await expect(link.send({ id: 0x305, ext: false, data: new Uint8Array(8) })).rejects.toThrow(/not open/);
    await link.close();
    expect(link.description).toBe('SocketCAN bbnocan9');
  });
});
