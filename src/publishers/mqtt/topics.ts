/**
 * MQTT topic layout and Home Assistant discovery configs. Pure: payload in, (topic, JSON) pairs out.
 *
 *   <topic>/status                      online | offline (retained; the last will says offline)
 *   <topic>/<id>/availability           online | offline (retained; offline while the battery is offline)
 *   <topic>/<id>/state                  the full StatePayload (JSON)
 *   <topic>/<id>/cells                  voltages, balancing, min/max/delta
 *   <topic>/<id>/limits                 CVL, CCL, DCL, BatteryLowVoltage, reasons, charge mode
 *   <topic>/<id>/alarms                 every alarm 0/1/2, worst, active names
 *   <topic>/<id>/connection             health, connected, link, last valid reply
 *   <topic>/<id>/members                bank only: member summaries and counts
 *   <topic>/inverter                    the inverter output's status (retained; MqttSink.component)
 *   <discovery>/<component>/batterybank_<id>/<object>/config   Home Assistant discovery (retained)
 */
import { ALARM_NAMES } from '../../domain/battery-state.js';
import type { StatePayload } from '../payload.js';

export interface Topics {
  status: string;
  availability(id: string): string;
  part(id: string, part: StatePart): string;
}

export const STATE_PARTS = ['state', 'cells', 'limits', 'alarms', 'connection', 'members'] as const;
export type StatePart = (typeof STATE_PARTS)[number];

export function topics(prefix: string): Topics {
  return {
    status: `${prefix}/status`,
    availability: (id) => `${prefix}/${id}/availability`,
    part: (id, part) => `${prefix}/${id}/${part}`,
  };
}

/** The message body of each part topic for one payload (members only for a bank). */
export function partBodies(p: StatePayload): Partial<Record<StatePart, unknown>> {
  const out: Partial<Record<StatePart, unknown>> = {
    state: p,
    cells: { id: p.id, time: p.time, ...p.cells },
    limits: { id: p.id, time: p.time, ...p.limits },
    alarms: { id: p.id, time: p.time, ...p.alarms },
    connection: {
      id: p.id,
      time: p.time,
      health: p.health,
      connected: p.connected,
      connection: p.connection,
      productName: p.productName,
      lastValid: p.lastValid,
    },
  };
  if (p.members) out.members = { id: p.id, time: p.time, ...p.bank, members: p.members };
  return out;
}

/** One discovery message. */
export interface DiscoveryMessage {
  topic: string;
  config: Record<string, unknown>;
}

export interface DiscoveryOptions {
  prefix: string;
  discoveryPrefix: string;
  version: string;
}

interface Entity {
  component: 'sensor' | 'binary_sensor';
  object: string;
  name: string;
  template: string;
  unit?: string;
  deviceClass?: string;
  stateClass?: 'measurement' | 'total_increasing';
  precision?: number;
  diagnostic?: boolean;
  icon?: string;
  /** Topic part whose JSON becomes the entity's attributes. */
  attributes?: StatePart;
  /** Stays available while the battery is offline (alarms, connectivity). */
  always?: boolean;
}

const snake = (s: string) => s.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();
const words = (s: string) => snake(s).replace(/_/g, ' ');

/** What a rendered template gives for a missing value: HA sets the state to unknown on "None". */
const v = (path: string) => `{{ value_json.${path} }}`;
const on = (cond: string) => `{{ 'ON' if ${cond} else 'OFF' }}`;

function entitiesOf(p: StatePayload): Entity[] {
  const e: Entity[] = [
    {
      component: 'sensor',
      object: 'voltage',
      name: 'Voltage',
      template: v('voltage'),
      unit: 'V',
      deviceClass: 'voltage',
      stateClass: 'measurement',
      precision: 2,
    },
    {
      component: 'sensor',
      object: 'current',
      name: 'Current',
      template: v('current'),
      unit: 'A',
      deviceClass: 'current',
      stateClass: 'measurement',
      precision: 2,
    },
    {
      component: 'sensor',
      object: 'power',
      name: 'Power',
      template: v('power'),
      unit: 'W',
      deviceClass: 'power',
      stateClass: 'measurement',
      precision: 0,
    },
    {
      component: 'sensor',
      object: 'soc',
      name: 'State of charge',
      template: v('soc'),
      unit: '%',
      deviceClass: 'battery',
      stateClass: 'measurement',
      precision: 0,
    },
    {
      component: 'sensor',
      object: 'soh',
      name: 'State of health',
      template: v('soh'),
      unit: '%',
      stateClass: 'measurement',
      precision: 0,
      icon: 'mdi:heart-pulse',
    },
    {
      component: 'sensor',
      object: 'capacity_remaining',
      name: 'Remaining capacity',
      template: v('capacityRemaining'),
      unit: 'Ah',
      stateClass: 'measurement',
      precision: 1,
      icon: 'mdi:battery-clock',
    },
    {
      component: 'sensor',
      object: 'capacity_installed',
      name: 'Installed capacity',
      template: v('capacityInstalled'),
      unit: 'Ah',
      precision: 0,
      diagnostic: true,
      icon: 'mdi:battery-high',
    },
    {
      component: 'sensor',
      object: 'cycles',
      name: 'Charge cycles',
      template: v('cycles'),
      stateClass: 'total_increasing',
      precision: 0,
      diagnostic: true,
      icon: 'mdi:battery-sync',
    },
    {
      component: 'sensor',
      object: 'cell_min',
      name: 'Min cell voltage',
      template: v('cells.min'),
      unit: 'V',
      deviceClass: 'voltage',
      stateClass: 'measurement',
      precision: 3,
      attributes: 'cells',
    },
    {
      component: 'sensor',
      object: 'cell_max',
      name: 'Max cell voltage',
      template: v('cells.max'),
      unit: 'V',
      deviceClass: 'voltage',
      stateClass: 'measurement',
      precision: 3,
      attributes: 'cells',
    },
    {
      component: 'sensor',
      object: 'cell_delta',
      name: 'Cell voltage delta',
      template: v('cells.delta'),
      unit: 'V',
      deviceClass: 'voltage',
      stateClass: 'measurement',
      precision: 3,
    },
    {
      component: 'sensor',
      object: 'temperature_min',
      name: 'Min temperature',
      template: v('temperatureMin'),
      unit: '°C',
      deviceClass: 'temperature',
      stateClass: 'measurement',
      precision: 1,
    },
    {
      component: 'sensor',
      object: 'temperature_max',
      name: 'Max temperature',
      template: v('temperatureMax'),
      unit: '°C',
      deviceClass: 'temperature',
      stateClass: 'measurement',
      precision: 1,
    },
    {
      component: 'sensor',
      object: 'charge_voltage_limit',
      name: 'Charge voltage limit (CVL)',
      template: v('limits.chargeVoltage'),
      unit: 'V',
      deviceClass: 'voltage',
      stateClass: 'measurement',
      precision: 2,
      attributes: 'limits',
      always: true,
    },
    {
      component: 'sensor',
      object: 'charge_current_limit',
      name: 'Charge current limit (CCL)',
      template: v('limits.chargeCurrent'),
      unit: 'A',
      deviceClass: 'current',
      stateClass: 'measurement',
      precision: 1,
      attributes: 'limits',
      always: true,
    },
    {
      component: 'sensor',
      object: 'discharge_current_limit',
      name: 'Discharge current limit (DCL)',
      template: v('limits.dischargeCurrent'),
      unit: 'A',
      deviceClass: 'current',
      stateClass: 'measurement',
      precision: 1,
      attributes: 'limits',
      always: true,
    },
    {
      component: 'sensor',
      object: 'battery_low_voltage',
      name: 'Battery low voltage',
      template: v('limits.batteryLowVoltage'),
      unit: 'V',
      deviceClass: 'voltage',
      precision: 2,
      diagnostic: true,
      always: true,
    },
    {
      component: 'sensor',
      object: 'charge_mode',
      name: 'Charge mode',
      template: v('limits.chargeMode'),
      icon: 'mdi:battery-charging',
      always: true,
    },
    {
      component: 'sensor',
      object: 'charge_limit_reason',
      name: 'Charge limit reason',
      template: v('limits.chargeReason'),
      icon: 'mdi:information-outline',
      diagnostic: true,
      always: true,
    },
    {
      component: 'sensor',
      object: 'discharge_limit_reason',
      name: 'Discharge limit reason',
      template: v('limits.dischargeReason'),
      icon: 'mdi:information-outline',
      diagnostic: true,
      always: true,
    },
    {
      component: 'sensor',
      object: 'alarm_level',
      name: 'Alarm level',
      template: "{{ ['ok', 'warning', 'alarm'][value_json.alarms.worst] }}",
      icon: 'mdi:alert',
      attributes: 'alarms',
      always: true,
    },
    {
      component: 'sensor',
      object: 'health',
      name: 'Health',
      template: v('health'),
      icon: 'mdi:lan-connect',
      diagnostic: true,
      attributes: 'connection',
      always: true,
    },
    {
      component: 'binary_sensor',
      object: 'connected',
      name: 'Connected',
      template: on('value_json.connected'),
      deviceClass: 'connectivity',
      diagnostic: true,
      always: true,
    },
    {
      component: 'binary_sensor',
      object: 'charge_fet',
      name: 'Charge FET',
      template: on('value_json.chargeFet'),
      deviceClass: 'power',
      diagnostic: true,
    },
    {
      component: 'binary_sensor',
      object: 'discharge_fet',
      name: 'Discharge FET',
      template: on('value_json.dischargeFet'),
      deviceClass: 'power',
      diagnostic: true,
    },
    {
      component: 'binary_sensor',
      object: 'balancing',
      name: 'Balancing',
      template: on('value_json.cells.balancingActive'),
      deviceClass: 'running',
      diagnostic: true,
    },
  ];
  p.temperatures.forEach((t, i) => {
    e.push({
      component: 'sensor',
      object: `temperature_${i + 1}`,
      name: `Temperature ${t.name}`,
      template: `{{ value_json.temperatures[${i}].celsius if value_json.temperatures | length > ${i} else None }}`,
      unit: '°C',
      deviceClass: 'temperature',
      stateClass: 'measurement',
      precision: 1,
    });
  });
  if (p.mosTemperature !== null) {
    e.push({
      component: 'sensor',
      object: 'mos_temperature',
      name: 'MOSFET temperature',
      template: v('mosTemperature'),
      unit: '°C',
      deviceClass: 'temperature',
      stateClass: 'measurement',
      precision: 1,
      diagnostic: true,
    });
  }
  if (p.kind === 'bank') {
    e.push({
      component: 'sensor',
      object: 'members_online',
      name: 'Batteries online',
      template: v('bank.online'),
      stateClass: 'measurement',
      icon: 'mdi:battery-multiple',
      attributes: 'members',
      always: true,
    });
  }
  for (const alarm of ALARM_NAMES) {
    e.push({
      component: 'binary_sensor',
      object: `alarm_${snake(alarm)}`,
      name: `Alarm ${words(alarm)}`,
      template: on(`value_json.alarms.${alarm} > 0`),
      deviceClass: 'problem',
      always: true,
    });
  }
  return e;
}

/** Discovery configs for one battery or bank (one HA device). */
export function discoveryMessages(p: StatePayload, o: DiscoveryOptions): DiscoveryMessage[] {
  const t = topics(o.prefix);
  const node = `batterybank_${p.id}`;
  const id = p.identity;
  const device: Record<string, unknown> = {
    identifiers: [node],
    name: p.kind === 'bank' ? `Battery bank ${p.id}` : `Battery ${p.id}`,
    manufacturer: id['manufacturer'] ?? (p.kind === 'bank' ? 'dbus-batterybank' : p.productName),
    model: id['model'] ?? p.productName,
  };
  if (id['firmware']) device['sw_version'] = id['firmware'];
  if (id['hardware']) device['hw_version'] = id['hardware'];
  if (id['serial']) device['serial_number'] = id['serial'];
  const origin = { name: 'dbus-batterybank', sw_version: o.version };
  return entitiesOf(p).map((e) => {
    const config: Record<string, unknown> = {
      name: e.name,
      unique_id: `${node}_${e.object}`,
      state_topic: t.part(p.id, 'state'),
      value_template: e.template,
      availability: e.always ? [{ topic: t.status }] : [{ topic: t.status }, { topic: t.availability(p.id) }],
      availability_mode: 'all',
      device,
      origin,
    };
    if (e.unit) config['unit_of_measurement'] = e.unit;
    if (e.deviceClass) config['device_class'] = e.deviceClass;
    if (e.stateClass) config['state_class'] = e.stateClass;
    if (e.precision !== undefined) config['suggested_display_precision'] = e.precision;
    if (e.diagnostic) config['entity_category'] = 'diagnostic';
    if (e.icon) config['icon'] = e.icon;
    if (e.attributes) config['json_attributes_topic'] = t.part(p.id, e.attributes);
    if (e.component === 'binary_sensor') {
      config['payload_on'] = 'ON';
      config['payload_off'] = 'OFF';
    }
    return { topic: `${o.discoveryPrefix}/${e.component}/${node}/${e.object}/config`, config };
  });
}
