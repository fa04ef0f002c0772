// Parses hero_snapshots.raw (schemaVersion 1, database/README.md) into what
// the derived tables need. Returns the first violation as a message.

export interface ParsedSnapshot {
  displayName: string;
  level: number;
  guild: string | null;
  power: number;
  heroCount: number;
  /** One entry per (type, tier), counts of duplicates summed. */
  troops: Array<{ type: string; tier: number; count: number }>;
}

export type ParseResult = { ok: true; value: ParsedSnapshot } | { ok: false; error: string };

type Obj = Record<string, unknown>;
const isObject = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v);

class Invalid extends Error {}

function int(value: unknown, path: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!isInt(value) || value < min || value > max) {
    throw new Invalid(`${path} must be an integer ${max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`}`);
  }
  return value;
}

function str(value: unknown, path: string): string {
  if (typeof value !== 'string' || value.length === 0) throw new Invalid(`${path} must be a non-empty string`);
  return value;
}

function list(value: unknown, path: string): unknown[] {
  if (!Array.isArray(value)) throw new Invalid(`${path} must be an array`);
  return value;
}

export function parseSnapshot(raw: unknown, userId: string): ParseResult {
  try {
    if (!isObject(raw)) throw new Invalid('raw must be a JSON object');
    if (raw.schemaVersion !== 1) throw new Invalid(`unknown schemaVersion ${JSON.stringify(raw.schemaVersion ?? null)} (expected 1)`);
    const player = raw.player;
    if (!isObject(player)) throw new Invalid('player must be an object');
    if (player.id !== userId) throw new Invalid(`player.id ${JSON.stringify(player.id ?? null)} does not match user_id ${JSON.stringify(userId)}`);
    const displayName = str(player.name, 'player.name');
    const level = int(player.level, 'player.level', 1);
    if (player.guild !== undefined && player.guild !== null && typeof player.guild !== 'string') throw new Invalid('player.guild must be a string or null');
    let power = 0;
    const heroes = list(raw.heroes, 'heroes');
    heroes.forEach((hero, i) => {
      if (!isObject(hero)) throw new Invalid(`heroes[${i}] must be an object`);
      str(hero.id, `heroes[${i}].id`);
      str(hero.name, `heroes[${i}].name`);
      int(hero.level, `heroes[${i}].level`, 1);
      power += int(hero.power, `heroes[${i}].power`, 0);
    });
    const troops = new Map<string, { type: string; tier: number; count: number }>();
    list(raw.troops, 'troops').forEach((troop, i) => {
      if (!isObject(troop)) throw new Invalid(`troops[${i}] must be an object`);
      const type = str(troop.type, `troops[${i}].type`);
      const tier = int(troop.tier, `troops[${i}].tier`, 1, 10);
      const count = int(troop.count, `troops[${i}].count`, 0);
      const key = `${type}\0${tier}`;
      const existing = troops.get(key);
      if (existing) existing.count += count;
      else troops.set(key, { type, tier, count });
    });
    if (!Number.isSafeInteger(power)) throw new Invalid('the sum of heroes[].power is too large');
    return { ok: true, value: { displayName, level, guild: (player.guild as string | null | undefined) ?? null, power, heroCount: heroes.length, troops: [...troops.values()] } };
  } catch (err) {
    if (err instanceof Invalid) return { ok: false, error: err.message };
    throw err;
  }
}
