"""A real one-node SLURM cluster on 127.0.0.1 (Debian's slurm-wlm + munge), started and stopped by PID.

Facts that make it work: Slurm 22.05 drops a GPU gres without ``File=``, so ``File=`` points at character
devices made with ``mknod c 1 3``; ``NoInAddrAny,NoCtldInAddrAny`` keeps the daemons on loopback;
accounting is off (no slurmdbd). The config must be at the default path ``/etc/slurm/slurm.conf``: the
SLURM executor's job step drops ``SLURM_*`` variables (``SLURM_CONF`` included) before its nested
``srun``. An existing ``/etc/slurm/slurm.conf`` that this module did not write is never touched.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

CONF_DIR = Path("/etc/slurm")
MARK = "# written by matchforge tests/slurm_cluster.py"


def available() -> str | None:
    """Why a loopback cluster cannot run here (None when it can)."""
    if os.geteuid() != 0:
        return "needs root (slurmd runs jobs as their user)"
    missing = [b for b in ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol") if not shutil.which(b)]
    if missing:
        return f"missing {', '.join(missing)}: apt-get install slurm-wlm munge (make test-slurm does)"
    conf = CONF_DIR / "slurm.conf"
    if conf.exists() and MARK not in conf.read_text():
        return f"{conf} belongs to a real installation"
    return None


class LoopbackCluster:
    """Partitions ``cpuq`` (default) and ``gpuq`` on one node with ``cpus`` CPUs and 4 counted GPUs."""

    def __init__(self, root: Path, cpus: int = 2):
        self.root, self.cpus, self.pids = Path(root), cpus, {}
        self.host = socket.gethostname()

    @staticmethod
    def memory_mb() -> int:
        """90 % of this machine's memory (slurmd drains a node that reports less than configured)."""
        kb = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")))
        return int(kb / 1024 * 0.9)

    def _write(self) -> None:
        r = self.root
        (r / "state").mkdir(parents=True, exist_ok=True)
        (r / "spool").mkdir(exist_ok=True)
        for i in range(4):
            dev = r / f"gpu{i}"
            if not dev.exists():
                os.mknod(dev, 0o666 | 0o020000, os.makedev(1, 3))  # a character device, like /dev/null
        key = r / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        CONF_DIR.mkdir(parents=True, exist_ok=True)
        (CONF_DIR / "slurm.conf").write_text(f"""{MARK}
ClusterName=matchforge
SlurmctldHost={self.host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={r}/munge.socket
CredType=cred/munge
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool
SlurmctldPidFile={r}/slurmctld.pid
SlurmdPidFile={r}/slurmd.pid
SlurmctldPort=16817
SlurmdPort=16818
SlurmctldLogFile={r}/slurmctld.log
SlurmdLogFile={r}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
MinJobAge=900
KillWait=30
CommunicationParameters=NoInAddrAny,NoCtldInAddrAny
GresTypes=gpu
NodeName={self.host} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={self.memory_mb()} Gres=gpu:4 State=UNKNOWN
PartitionName=cpuq Nodes={self.host} Default=YES MaxTime=INFINITE State=UP
PartitionName=gpuq Nodes={self.host} MaxTime=INFINITE State=UP
""")
        (CONF_DIR / "gres.conf").write_text(f"{MARK}\nName=gpu File={r}/gpu[0-3]\n")

    def start(self, timeout: float = 60) -> "LoopbackCluster":
        self._write()
        r = self.root
        subprocess.run(["munged", f"--key-file={r}/munge.key", f"--socket={r}/munge.socket", f"--pid-file={r}/munged.pid",
                        f"--log-file={r}/munged.log", f"--seed-file={r}/munge.seed", "--force"], check=True)
        subprocess.run(["slurmctld"], check=True)
        subprocess.run(["slurmd"], check=True)
        t0 = time.time()
        while len(self.pids) < 3 and time.time() - t0 < timeout:  # the daemons write their pid files when up
            for name in ("munged", "slurmctld", "slurmd"):
                pid = r / f"{name}.pid"
                if name not in self.pids and pid.is_file() and pid.read_text().strip():
                    self.pids[name] = int(pid.read_text())
            time.sleep(0.2)
        while time.time() - t0 < timeout:
            out = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True).stdout.split()
            if out and all(s == "idle" for s in out):
                return self
            time.sleep(0.5)
        raise RuntimeError(f"the loopback cluster did not come up:\n{(r / 'slurmctld.log').read_text()[-2000:]}")

    def stop(self) -> None:
        subprocess.run(["scancel", "--user=root"], capture_output=True)
        for name in ("slurmd", "slurmctld", "munged"):
            pid = self.pids.get(name)
            for sig, wait in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
                try:
                    os.kill(pid, sig)
                except (ProcessLookupError, TypeError):
                    break
                t0 = time.time()
                while time.time() - t0 < wait:
                    try:
                        os.kill(pid, 0)
                    except ProcessLookupError:
                        break
                    time.sleep(0.2)
                else:
                    continue
                break
        for f in ("slurm.conf", "gres.conf"):
            p = CONF_DIR / f
            if p.exists() and MARK in p.read_text():
                p.unlink()

    def job(self, job_id: str) -> dict[str, str]:
        """``scontrol show job`` as a dict (works without accounting, for MinJobAge seconds)."""
        text = subprocess.run(["scontrol", "show", "job", job_id, "-o"], capture_output=True, text=True).stdout
        return dict(kv.split("=", 1) for kv in text.split() if "=" in kv)
