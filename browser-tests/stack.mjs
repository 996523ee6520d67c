// Starts the real StreamSpace stack for a browser test: a fresh database on the Postgres that
// scripts/test started (DATABASE_URL), the control-plane binary, and the agent binary, and
// stops them all again.

import { spawn, spawnSync, execFile, execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, openSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';

export const ROOT = resolve(import.meta.dirname, '..');
const BIN = join(ROOT, 'target', 'debug');

export function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

async function until(what, check, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value) return value;
    } catch (e) {
      last = e;
    }
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
}

export class Stack {
  constructor() {
    this.children = [];
    this.accountPrefix = `ss-e2e-${process.pid.toString(36)}`;
    this.dir = mkdtempSync(join(tmpdir(), 'streamspace-browser-'));
    // The local agent (as root) runs desktops as an unprivileged account: it must reach
    // their homes under this directory.
    chmodSync(this.dir, 0o711);
  }

  run(name, binary, env, args = []) {
    const log = openSync(join(this.dir, `${name}.log`), 'a');
    const child = spawn(binary, args, { env: { PATH: process.env.PATH, RUST_LOG: 'info', ...env }, stdio: ['ignore', log, log] });
    this.children.push(child);
    return child;
  }

  async api(path, { method = 'GET', body, token = this.admin } = {}) {
    const response = await fetch(`${this.base}${path}`, {
      method,
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    const data = text ? JSON.parse(text) : null;
    if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
    return data;
  }

  async login(username, password) {
    const { token } = await this.api('/api/v1/auth/login', { method: 'POST', body: { username, password }, token: null });
    return token;
  }

  /** Control plane on a fresh database; the admin is logged in. */
  async startControlPlane(env = {}) {
    const server = process.env.DATABASE_URL;
    if (!server) throw new Error('DATABASE_URL is not set: run the browser tests through scripts/test');
    const database = `browser_${process.pid}_${Date.now()}`;
    execFileSync('psql', [server, '-q', '-c', `CREATE DATABASE ${database}`]);
    this.dropDatabase = () => execFileSync('psql', [server, '-q', '-c', `DROP DATABASE IF EXISTS ${database} WITH (FORCE)`]);
    this.controlPlaneEnv = {
      DATABASE_URL: server.replace(/\/[^/?]*(\?|$)/, `/${database}$1`),
      JWT_SECRET: 'browser-test-secret-browser-test-secret',
      STREAMSPACE_ADMIN_PASSWORD: 'admin-password',
      STATIC_DIR: join(ROOT, 'static'),
      RECORDING_DIR: join(this.dir, 'recordings'),
      ...env,
    };
    this.base = await this.startReplica();
    this.wsBase = this.base.replace('http://', 'ws://');
    this.admin = await this.login('admin', 'admin-password');
  }

  /** Another control-plane replica on the same database; returns its base URL. */
  async startReplica() {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    this.replicas ??= new Map();
    const child = this.run(`control-plane-${this.replicas.size + 1}`, join(BIN, 'streamspace-control-plane'), {
      ...this.controlPlaneEnv,
      LISTEN_ADDR: `127.0.0.1:${port}`,
      // Short, so that a killed replica's agents move within seconds, but not so short that a
      // busy machine's slow beats make replicas judge each other dead (three missed beats): at
      // 200 ms, a replica started under load once did, and took the others' agent from them.
      REPLICA_HEARTBEAT_INTERVAL: '500ms',
    });
    this.replicas.set(base, child);
    await until('the control plane', async () => (await fetch(`${base}/readyz`)).ok);
    return base;
  }

  /** HAProxy in front of every replica started so far, checking /readyz; returns its base URL. */
  async startLoadBalancer() {
    const port = await freePort();
    const servers = [...this.replicas.keys()].map((base, i) => `    server replica${i} ${base.replace('http://', '')} check`).join('\n');
    const config = join(this.dir, 'haproxy.cfg');
    // Checks every 100 ms so that a killed replica is out at once (its port refuses), with
    // `timeout check` well above a check's usual time: without it HAProxy waits only `inter`
    // for /readyz, and a debug build on a busy machine once took longer on every replica at
    // the same moment — all three went DOWN and the viewer's scripts got 503s.
    writeFileSync(config, [
      'global', '    maxconn 1024', '    log stdout format raw local0',
      'defaults', '    mode http', '    log global', '    option httplog',
      '    timeout connect 1s', '    timeout client 1h', '    timeout server 1h', '    timeout tunnel 1h',
      '    timeout check 2s', '    retries 3', '    option redispatch',
      'frontend streamspace', `    bind 127.0.0.1:${port}`, '    default_backend replicas',
      'backend replicas', '    balance roundrobin', '    option httpchk GET /readyz',
      '    default-server inter 100ms fall 1 rise 1', servers, '',
    ].join('\n'));
    this.run('haproxy', 'haproxy', {}, ['-db', '-f', config]);
    const base = `http://127.0.0.1:${port}`;
    await until('the load balancer', async () => (await fetch(`${base}/readyz`)).ok);
    return base;
  }

  /** The base URL of the replica holding an agent's link, as the database records it. */
  replicaOf(agentId) {
    const address = execFileSync('psql', [this.controlPlaneEnv.DATABASE_URL, '-At', '-c',
      `SELECT r.address FROM agents a JOIN replicas r ON r.id = a.replica_id WHERE a.agent_id = '${agentId}' AND a.status = 'online'`]).toString().trim();
    return address || null;
  }

  /** Kills a replica outright (SIGKILL: no goodbye, no hand-over). */
  async killReplica(base) {
    const child = this.replicas.get(base);
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    this.replicas.delete(base);
  }

  /**
   * A namespace on the real test cluster that scripts/test started (STREAMSPACE_TEST_KUBECONFIG),
   * set up as the agent's Helm chart does, with a desktop bridge giving each session Pod a real
   * Xvnc through kwok's port-forward. Returns the agent's kubeconfig (its ServiceAccount's
   * token) and the namespace.
   */
  async startKubeNamespace() {
    const admin = process.env.STREAMSPACE_TEST_KUBECONFIG;
    if (!admin) throw new Error('STREAMSPACE_TEST_KUBECONFIG is not set: run the browser tests through scripts/test');
    const namespace = `browser-${process.pid}`;
    const kubeconfig = join(this.dir, 'agent-kubeconfig');
    // Not execFileSync: it takes seconds, and with the event loop held that long fetch's idle
    // connection to the control plane outlives the server's keep-alive (5 s) unnoticed — the
    // next request went out on a closed socket ("fetch failed", UND_ERR_SOCKET).
    await promisify(execFile)(join(ROOT, 'scripts', 'kube-cluster'), ['agent-namespace', admin, namespace, kubeconfig]);
    this.deleteNamespace = () => execFileSync(join(process.env.K8S_BIN, 'kubectl'), ['--kubeconfig', admin, 'delete', 'namespace', namespace, '--wait=false']);
    this.run('kwok-desktops', join(BIN, 'kwok-desktops'), {}, [admin, namespace]);
    return { kubeconfig, namespace };
  }

  /** The test run's private Docker engine and the desktop image built on it. */
  dockerEngine() {
    const host = process.env.STREAMSPACE_TEST_DOCKER_HOST;
    const image = process.env.STREAMSPACE_TEST_DESKTOP_IMAGE;
    if (!host || !image) throw new Error('STREAMSPACE_TEST_DOCKER_HOST is not set: run the browser tests through scripts/test');
    return { host, image };
  }

  /**
   * Waits until no IPv6 address on this host is still tentative. Chromium aborts requests in
   * flight (net::ERR_NETWORK_CHANGED) whenever an address changes, even to 127.0.0.1, and a
   * container's new network interfaces finish duplicate-address detection a second or two
   * after it started; a browser on another machine never sees that.
   */
  async networkSettled() {
    await until('the host network settled', async () => execFileSync('ip', ['-o', '-6', 'addr', 'show', 'tentative']).toString().trim() === '');
    await sleep(1000);
  }

  /** Registers and starts an agent binary with the given extra environment. */
  async startAgent(agentId, platform, env = {}) {
    const { credential } = await this.api('/api/v1/agents/register', { method: 'POST', body: { agent_id: agentId, platform } });
    this.agents ??= {};
    this.agents[agentId] = {
      env: {
      AGENT_ID: agentId,
      CONTROL_PLANE_URL: this.wsBase,
      AGENT_TOKEN: credential.token,
      PLATFORM: platform,
      HEALTH_ADDR: `127.0.0.1:${await freePort()}`,
      DATA_DIR: join(this.dir, `agent-${agentId}`),
        SCREEN_GEOMETRY: '1024x768',
        // Run as root, the agent makes an account per user: this run's own, removed in stop().
        DESKTOP_USER: this.accountPrefix,
        ...env,
      },
    };
    await this.spawnAgent(agentId);
  }

  /** Desktop accounts the agents of this stack made (only root makes any). */
  removeAccounts() {
    if (process.getuid() !== 0) return;
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const name = line.split(':')[0];
      if (name.startsWith(`${this.accountPrefix}-`)) spawnSync('userdel', [name]);
    }
  }

  async spawnAgent(agentId) {
    const agent = this.agents[agentId];
    agent.child = this.run(`agent-${agentId}`, join(BIN, 'streamspace-k8s-agent'), agent.env);
    await until(`agent ${agentId} online`, async () => (await this.api(`/api/v1/agents/${agentId}`)).status === 'online');
  }

  /** Freezes (SIGSTOP) or thaws (SIGCONT) the agent process: alive, connected, silent. */
  signalAgent(agentId, signal) {
    this.agents[agentId].child.kill(signal);
  }

  /** Stops the agent (SIGTERM: it says goodbye) and starts it again with `env` changed. */
  async restartAgent(agentId, env) {
    const agent = this.agents[agentId];
    const exited = new Promise((r) => agent.child.once('exit', r));
    agent.child.kill('SIGTERM');
    await exited;
    Object.assign(agent.env, env);
    await this.spawnAgent(agentId);
  }

  /** Kills the agent process outright (no goodbye) and starts it again. */
  async crashAndRestartAgent(agentId) {
    const { child } = this.agents[agentId];
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    await this.spawnAgent(agentId);
  }

  async createUser(username, password) {
    await this.api('/api/v1/users', { method: 'POST', body: { username, password } });
    return this.login(username, password);
  }

  // Without a persistent home unless asked: a home serves one desktop at a time.
  async runningSession(token, template, { persistentHome = false } = {}) {
    const body = { template, persistent_home: persistentHome };
    const session = await this.api('/api/v1/sessions', { method: 'POST', body, token });
    await until(`session ${session.id} running`, async () => {
      const now = await this.api(`/api/v1/sessions/${session.id}`, { token });
      if (now.state === 'failed') throw new Error(`session failed: ${now.state_reason}`);
      return now.state === 'running';
    }, 120000);
    return session.id;
  }

  async stop() {
    // Sessions first, so the agent removes what it started.
    try {
      const { sessions } = await this.api('/api/v1/sessions?state=running');
      await Promise.all(sessions.map((s) => this.api(`/api/v1/sessions/${s.id}`, { method: 'DELETE' })));
      await until('sessions deleted', async () => (await this.api('/api/v1/sessions?state=terminating')).sessions.length === 0, 10000);
    } catch {
      // best effort: the processes go below anyway
    }
    for (const child of this.children.reverse()) {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await Promise.race([new Promise((r) => child.once('exit', r)), sleep(5000)]);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
    }
    // Desktops outlive their agent by design: whatever of this stack's still runs (one whose
    // deletion did not finish, or in a state the list above does not take) is stopped here,
    // found by this stack's own directory in its command line.
    spawnSync('pkill', ['-KILL', '-f', this.dir]);
    this.dropDatabase?.();
    this.deleteNamespace?.();
    this.removeAccounts();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export { until };
