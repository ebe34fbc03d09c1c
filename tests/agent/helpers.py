"""Spec building and container round trips for the agent tests."""
import itertools

import ttrpc_client

_ids = itertools.count()

DEFAULT_NAMESPACES = ("pid", "mount", "ipc", "uts")


def default_mounts(pb):
    M = pb.oci.Mount
    return [
        M(destination="/proc", source="proc", type="proc", options=["nosuid", "noexec", "nodev"]),
        M(destination="/dev", source="tmpfs", type="tmpfs",
          options=["nosuid", "strictatime", "mode=755", "size=65536k"]),
        M(destination="/dev/pts", source="devpts", type="devpts",
          options=["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]),
        M(destination="/tmp", source="tmpfs", type="tmpfs", options=["nosuid", "nodev", "size=16m"]),
    ]


ALL_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_KILL", "CAP_SETUID",
            "CAP_SETGID", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT"]


def make_process(pb, args, env=None, cwd="/", terminal=False, uid=0, gid=0, gids=(),
                 caps=None, rlimits=None, no_new_privs=False):
    p = pb.oci.Process(Args=list(args), Cwd=cwd, Terminal=terminal,
                       NoNewPrivileges=no_new_privs)
    p.Env.extend(env if env is not None else ["PATH=/bin", "HOME=/root"])
    p.User.UID = uid
    p.User.GID = gid
    p.User.AdditionalGids.extend(gids)
    c = caps if caps is not None else ALL_CAPS
    for field in ("Bounding", "Effective", "Permitted"):
        getattr(p.Capabilities, field).extend(c)
    for rtype, soft, hard in rlimits or [("RLIMIT_NOFILE", 1024, 1024)]:
        p.Rlimits.add(Type=rtype, Soft=soft, Hard=hard)
    if terminal:
        p.ConsoleSize.Height = 24
        p.ConsoleSize.Width = 80
    return p


def make_spec(pb, rootfs, args, hostname=None, namespaces=DEFAULT_NAMESPACES, mounts=None,
              readonly=False, resources=None, masked=(), readonly_paths=(), sysctl=None,
              **proc_kw):
    spec = pb.oci.Spec(Version="1.0.2")
    spec.Process.CopyFrom(make_process(pb, args, **proc_kw))
    spec.Root.Path = rootfs
    spec.Root.Readonly = readonly
    if hostname:
        spec.Hostname = hostname
    spec.Mounts.extend(default_mounts(pb) if mounts is None else mounts)
    for ns in namespaces:
        spec.Linux.Namespaces.add(Type=ns)
    spec.Linux.MaskedPaths.extend(masked)
    spec.Linux.ReadonlyPaths.extend(readonly_paths)
    for k, v in (sysctl or {}).items():
        spec.Linux.Sysctl[k] = v
    if resources is not None:
        spec.Linux.Resources.CopyFrom(resources)
    return spec


class Sandbox:
    """Container helpers on one connection of the shared agent."""

    def __init__(self, agent, client, pb, rootfs):
        self.agent = agent
        self.c = client
        self.pb = pb
        self.rootfs = rootfs
        self.created = []

    def new_id(self, prefix="c"):
        return f"{prefix}{next(_ids)}"

    def create(self, args, cid=None, **kw):
        cid = cid or self.new_id()
        spec = make_spec(self.pb, self.rootfs, args, **kw)
        self.c.call("CreateContainer", self.pb.agent.CreateContainerRequest(
            container_id=cid, exec_id=cid, OCI=spec))
        self.created.append(cid)
        return cid

    def start(self, cid):
        self.c.call("StartContainer", self.pb.agent.StartContainerRequest(container_id=cid))

    def exec(self, cid, args, eid=None, **kw):
        eid = eid or self.new_id("e")
        self.c.call("ExecProcess", self.pb.agent.ExecProcessRequest(
            container_id=cid, exec_id=eid, process=make_process(self.pb, args, **kw)))
        return eid

    def read_all(self, cid, eid, method="ReadStdout", limit=1 << 20):
        out = b""
        while len(out) <= limit:
            r = self.c.call(method, self.pb.agent.ReadStreamRequest(
                container_id=cid, exec_id=eid, len=65536))
            if not r.data:
                return out
            out += r.data
        raise AssertionError(f"{method}: more than {limit} bytes")

    def wait(self, cid, eid, timeout=30):
        return self.c.call("WaitProcess", self.pb.agent.WaitProcessRequest(
            container_id=cid, exec_id=eid), timeout=timeout).status

    def signal(self, cid, eid, sig):
        self.c.call("SignalProcess", self.pb.agent.SignalProcessRequest(
            container_id=cid, exec_id=eid, signal=sig))

    def remove(self, cid, timeout=10):
        self.c.call("RemoveContainer", self.pb.agent.RemoveContainerRequest(
            container_id=cid, timeout=timeout))
        if cid in self.created:
            self.created.remove(cid)

    def collect(self, cid, eid):
        """Read stdout and stderr to EOF, then wait: (status, stdout, stderr)."""
        out = self.read_all(cid, eid)
        err = self.read_all(cid, eid, "ReadStderr")
        return self.wait(cid, eid), out, err

    def run(self, args, **kw):
        """Create, start and finish a container; returns (status, stdout, stderr)."""
        cid = self.create(args, **kw)
        self.start(cid)
        res = self.collect(cid, cid)
        self.remove(cid)
        return res

    def cleanup(self):
        for cid in list(self.created):
            try:
                self.remove(cid)
            except (ttrpc_client.RpcError, ConnectionError, TimeoutError):
                pass
