/**
 * The demo's live view: one battery service's items (as read back from D-Bus) rendered as text.
 * Pure: items in, lines out; the caller clears the screen and prints them once a second.
 */
export type Items = Record<string, number | string | undefined>;

const BAR = 24;

function bar(value: number | undefined, lo: number, hi: number, width = BAR): string {
  if (value === undefined || !Number.isFinite(value)) return `${' '.repeat(width)}`;
  const f = Math.max(0, Math.min(1, (value - lo) / (hi - lo)));
  const n = Math.round(f * width);
  return `${'█'.repeat(n)}${'·'.repeat(width - n)}`;
}

function fmt(v: number | string | undefined, digits: number, unit: string): string {
  if (v === undefined) return '---';
  if (typeof v === 'string') return v;
  return `${v.toFixed(digits)}${unit}`;
}

const num = (v: number | string | undefined): number | undefined => (typeof v === 'number' ? v : undefined);

export function renderBattery(service: string, items: Items): string[] {
  const n = (p: string) => num(items[p]);
  const name = (items['/CustomName'] as string) || (items['/ProductName'] as string) || service;
  const connected = n('/Connected') === 1;
  const lines: string[] = [];
  lines.push(
    `${name}  [${service}]  instance ${fmt(items['/DeviceInstance'], 0, '')}  ${items['/Mgmt/Connection'] ?? ''}`,
  );
  lines.push(
    `  state  ${connected ? 'CONNECTED' : 'OFFLINE  '}   ${fmt(n('/Dc/0/Voltage'), 2, ' V')}  ${fmt(n('/Dc/0/Current'), 2, ' A')}  ${fmt(n('/Dc/0/Power'), 0, ' W')}  ${fmt(n('/Dc/0/Temperature'), 1, ' °C')}`,
  );
  lines.push(
    `  SoC    ${bar(n('/Soc'), 0, 100)} ${fmt(n('/Soc'), 0, ' %')}   ${fmt(n('/Capacity'), 1, '')}/${fmt(n('/InstalledCapacity'), 1, ' Ah')}`,
  );
  lines.push(
    `  limits CVL ${fmt(n('/Info/MaxChargeVoltage'), 2, ' V')}  CCL ${fmt(n('/Info/MaxChargeCurrent'), 1, ' A')}  DCL ${fmt(n('/Info/MaxDischargeCurrent'), 1, ' A')}  low ${fmt(n('/Info/BatteryLowVoltage'), 2, ' V')}`,
  );
  const why = [items['/Info/ChargeLimitation'], items['/Info/DischargeLimitation']].filter(
    (x) => typeof x === 'string',
  );
  const mode = items['/Info/ChargeMode'];
  if (typeof mode === 'string') {
    lines.push(`  mode   ${mode}   cell target ${fmt(n('/Info/MaxChargeCellVoltage'), 3, ' V')}`);
  }
  if (why.length) lines.push(`  why    charge: ${why[0] ?? '---'}   discharge: ${why[1] ?? '---'}`);
  const cells = n('/System/NrOfCellsPerBattery') ?? 0;
  const minId = items['/System/MinVoltageCellId'];
  const maxId = items['/System/MaxVoltageCellId'];
  for (let i = 1; i <= cells; i++) {
    const v = n(`/Voltages/Cell${i}`);
    const bal = n(`/Balances/Cell${i}`) === 1 ? ' ⇄' : '  ';
    const tag = `C${i}` === minId ? ' min' : `C${i}` === maxId ? ' max' : '';
    lines.push(`  C${String(i).padEnd(2)}    ${bar(v, 2.8, 3.65)} ${fmt(v, 3, ' V')}${bal}${tag}`);
  }
  if (cells > 0) lines.push(`  diff   ${fmt(n('/Voltages/Diff'), 3, ' V')}   sum ${fmt(n('/Voltages/Sum'), 2, ' V')}`);
  const alarms = Object.entries(items)
    .filter(([p, v]) => p.startsWith('/Alarms/') && typeof v === 'number' && v > 0)
    .map(([p, v]) => `${p.slice(8)}=${v === 2 ? 'ALARM' : 'warn'}`);
  lines.push(`  alarms ${alarms.length ? alarms.join(' ') : 'none'}`);
  return lines;
}
