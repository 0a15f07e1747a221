// USER and --chown name resolution from the image's own /etc/passwd and /etc/group,
// as Docker does it: names or numbers, `user[:group]`, supplementary groups from /etc/group.
import type { RootView } from './rootview.js';

export interface Identity {
  uid: number;
  gid: number;
  additionalGids: number[];
  /** The HOME runc gives this uid: the home field of the first /etc/passwd entry with it, or "/". */
  home: string;
}

interface PasswdRow {
  name: string;
  uid: number;
  gid: number;
  home: string;
}
interface GroupRow {
  name: string;
  gid: number;
  members: string[];
}

export class UserError extends Error {}

async function table(view: RootView, path: string): Promise<string[][]> {
  const buf = await view.readFile(path).catch(() => undefined);
  if (!buf) return [];
  return buf
    .toString('utf8')
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.split(':'));
}

async function passwd(view: RootView): Promise<PasswdRow[]> {
  return (await table(view, '/etc/passwd'))
    .filter((r) => r.length >= 4)
    .map((r) => ({ name: r[0], uid: Number(r[2]), gid: Number(r[3]), home: r[5] ?? '' }));
}

async function groups(view: RootView): Promise<GroupRow[]> {
  return (await table(view, '/etc/group'))
    .filter((r) => r.length >= 3)
    .map((r) => ({ name: r[0], gid: Number(r[2]), members: (r[3] ?? '').split(',').filter(Boolean) }));
}

const numeric = (s: string) => /^\d+$/.test(s);

/** For RUN and the container's process: Docker's rules, root when empty. */
export async function resolveUser(view: RootView, spec: string | undefined): Promise<Identity> {
  if (!spec) spec = '0';
  const [user, group] = splitOnce(spec);
  const users = await passwd(view);
  let uid: number, gid: number, name: string | undefined;
  const row =
    users.find((u) => u.name === user) ?? (numeric(user) ? users.find((u) => u.uid === Number(user)) : undefined);
  if (row) {
    uid = row.uid;
    gid = row.gid;
    name = row.name;
  } else if (numeric(user)) {
    uid = Number(user);
    gid = 0;
  } else {
    throw new UserError(`unable to find user ${user}: no matching entries in passwd file`);
  }
  const gs = await groups(view);
  if (group !== undefined) gid = await groupId(gs, group);
  const additionalGids =
    name && group === undefined ? gs.filter((g) => g.members.includes(name) && g.gid !== gid).map((g) => g.gid) : [];
  // runc looks the process's uid up again (it is given numbers) for HOME: the first entry wins.
  const home = users.find((u) => u.uid === uid)?.home ?? '/';
  return { uid, gid, additionalGids, home };
}

/**
 * The identity of a container's process (run and exec): Docker's daemon also puts the primary gid in the
 * supplementary groups (`id` in `docker run` shows it among `groups=`), which BuildKit's RUN steps do not.
 */
export function asContainerProcess(who: Identity): Identity {
  return { ...who, additionalGids: [who.gid, ...who.additionalGids.filter((g) => g !== who.gid)] };
}

/**
 * The environment a container's or a RUN step's process starts with, as runc makes it: HOME
 * added (or an empty one replaced) from `home` (Identity.home); one the image or the user set wins.
 */
export function withHome(env: string[], home: string): string[] {
  const i = env.findIndex((e) => e.startsWith('HOME='));
  if (i < 0) return [...env, `HOME=${home}`];
  if (env[i] !== 'HOME=') return env;
  return env.map((e, j) => (j === i ? `HOME=${home}` : e));
}

/** For COPY --chown: a user alone also names the group of the same number, as BuildKit does. */
export async function resolveChown(view: RootView, spec: string): Promise<{ uid: number; gid: number }> {
  const [user, group] = splitOnce(spec);
  let uid: number, gid: number;
  if (numeric(user)) {
    uid = Number(user);
    gid = uid;
  } else {
    const row = (await passwd(view)).find((u) => u.name === user);
    if (!row)
      throw new UserError(
        'unable to convert uid/gid chown string to host mapping: ' +
          `can't find uid for user ${user}: no such user: ${user}`,
      );
    uid = row.uid;
    gid = row.gid;
  }
  if (group !== undefined) gid = await groupId(await groups(view), group);
  return { uid, gid };
}

async function groupId(gs: GroupRow[], group: string): Promise<number> {
  if (numeric(group)) return Number(group);
  const g = gs.find((r) => r.name === group);
  if (!g) throw new UserError(`unable to find group ${group}: no matching entries in group file`);
  return g.gid;
}

function splitOnce(spec: string): [string, string | undefined] {
  const i = spec.indexOf(':');
  return i < 0 ? [spec, undefined] : [spec.slice(0, i), spec.slice(i + 1)];
}
