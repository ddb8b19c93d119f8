"""A real one-node Slurm cluster on this machine, for the tests: Debian's munge, slurmctld and slurmd.

`make test` installs the packages where they are missing (as root, with apt-get); `SlurmCluster`
writes its own slurm.conf (free ports, state and logs in a temporary folder), starts the daemons
in the foreground as child processes, waits until the node is idle, and stops them by pid.
Commands find the cluster through SLURM_CONF, which Slurm passes on to the jobs.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from conftest import free_port

COMMANDS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel")
MUNGE_SOCKET_DIR = Path("/run/munge")


def missing_reason() -> str | None:
    """Why no cluster can be started here, or None."""
    if os.geteuid() != 0:
        return "the Slurm daemons run as root here, and these tests do not"
    missing = [name for name in COMMANDS if not shutil.which(name, path=f"{os.environ['PATH']}:/usr/sbin")]
    if missing:
        return (f"Slurm is not installed ({', '.join(missing)} missing): `make test` installs Debian's "
                "slurmctld, slurmd, slurm-client and munge as root")
    return None


def _wait(check, what: str, log: Path | None = None, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            tail = log.read_text()[-3000:] if log and log.exists() else ""
            raise RuntimeError(f"Slurm test cluster: {what} did not happen in {timeout:.0f} s\n{tail}")
        time.sleep(0.2)


class SlurmCluster:
    """One node (this host, all its CPUs, 90% of its memory) in one partition, `debug`. Clusters
    started side by side (two test runs) share nothing: ports, munged and folders are their own."""

    partition = "debug"

    def __init__(self, folder: Path | None = None):
        """`folder` holds the configuration, state and logs (kept after stop) [default: a new temporary one,
        removed at stop]."""
        self.keep = folder is not None
        self.folder = folder or Path(tempfile.mkdtemp(prefix="prox-slurm-"))
        self.conf = self.folder / "slurm.conf"
        self.munge_folder: Path | None = None  # munged wants its socket in a folder that munge owns
        self.env = {**os.environ, "SLURM_CONF": str(self.conf), "PATH": f"{os.environ['PATH']}:/usr/sbin"}
        self._processes: list[subprocess.Popen] = []

    def run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(command, capture_output=True, text=True, env=self.env, timeout=60, check=check)

    def _write_conf(self) -> None:
        host = socket.gethostname().split(".")[0]
        memory_mb = int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20 * 0.9)
        for name in ("state", "spool", "log", "run"):
            (self.folder / name).mkdir()
        settings = {
            "ClusterName": "prox-test", "SlurmctldHost": f"{host}(127.0.0.1)", "SlurmUser": "root",
            "SlurmctldPort": free_port(), "SlurmdPort": free_port(),
            "AuthType": "auth/munge", "CredType": "cred/munge", "AuthInfo": f"socket={self.munge_socket}",
            "MpiDefault": "none", "MailProg": "/bin/true",
            "ProctrackType": "proctrack/linuxproc", "TaskPlugin": "task/none",
            "JobAcctGatherType": "jobacct_gather/none", "AccountingStorageType": "accounting_storage/none",
            "JobCompType": "jobcomp/none", "SelectType": "select/cons_tres", "SelectTypeParameters": "CR_CPU",
            "ReturnToService": 2,
            # without it, a job that waits `afterok` on a failed one stays pending for ever
            "DependencyParameters": "kill_invalid_depend",
            "StateSaveLocation": self.folder / "state", "SlurmdSpoolDir": self.folder / "spool",
            "SlurmctldPidFile": self.folder / "run/slurmctld.pid", "SlurmdPidFile": self.folder / "run/slurmd.pid",
            "SlurmctldLogFile": self.folder / "log/slurmctld.log", "SlurmdLogFile": self.folder / "log/slurmd.log",
        }
        lines = [f"{key}={value}" for key, value in settings.items()]
        lines.append(f"NodeName={host} NodeAddr=127.0.0.1 CPUs={os.cpu_count()} RealMemory={memory_mb} "
                     "State=UNKNOWN")
        lines.append(f"PartitionName={self.partition} Nodes={host} Default=YES MaxTime=INFINITE State=UP")
        self.conf.write_text("\n".join(lines) + "\n")

    def _start(self, name: str, *command: str) -> None:
        with open(self.folder / "log" / f"{name}.out", "wb") as log:
            self._processes.append(subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT))

    @property
    def munge_socket(self) -> Path:
        return self.munge_folder / "socket"

    def _munge_works(self) -> bool:
        return subprocess.run(["munge", "-n", "--socket", str(self.munge_socket)], capture_output=True).returncode == 0

    def start(self) -> SlurmCluster:
        """munged of its own (its socket, pid and seed files in a folder of its own, which munge must own),
        then slurmctld, then slurmd; what started is stopped if the rest fails."""
        try:
            return self._start_daemons()
        except BaseException:
            self.stop()
            raise

    def _start_daemons(self) -> SlurmCluster:
        MUNGE_SOCKET_DIR.mkdir(exist_ok=True)
        self.munge_folder = Path(tempfile.mkdtemp(prefix="prox-slurm-", dir=MUNGE_SOCKET_DIR))
        shutil.chown(self.munge_folder, "munge", "munge")
        self.munge_folder.chmod(0o755)
        if not Path("/etc/munge/munge.key").exists():
            subprocess.run(["setpriv", "--reuid=munge", "--regid=munge", "--init-groups", "mungekey", "--create"],
                           check=True)
        self._write_conf()
        self._start("munged", "setpriv", "--reuid=munge", "--regid=munge", "--init-groups", "/usr/sbin/munged",
                    "--foreground", f"--socket={self.munge_socket}", f"--pid-file={self.munge_folder}/munged.pid",
                    f"--seed-file={self.munge_folder}/munged.seed")
        _wait(self._munge_works, "munged answering", self.folder / "log/munged.out")
        self._start("slurmctld", "/usr/sbin/slurmctld", "-D")
        _wait(lambda: "UP" in self.run("scontrol", "ping", check=False).stdout, "slurmctld up",
              self.folder / "log/slurmctld.log")
        self._start("slurmd", "/usr/sbin/slurmd", "-D")
        _wait(lambda: self.run("sinfo", "-h", "-o", "%t", check=False).stdout.strip() == "idle", "the node idle",
              self.folder / "log/slurmd.log")
        return self

    def stop(self) -> None:
        for process in reversed(self._processes):  # slurmd, slurmctld, then munged
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self.munge_folder:
            shutil.rmtree(self.munge_folder, ignore_errors=True)
        if not self.keep:
            shutil.rmtree(self.folder, ignore_errors=True)

    def job_states(self, job_id: str) -> list[str]:
        """The states of the job's array tasks that Slurm still lists as queued or running."""
        listed = self.run("squeue", "-h", "-j", job_id, "-o", "%T", check=False)
        return listed.stdout.split()

    def wait_for(self, job_id: str, until=lambda states: not states, timeout: float = 300) -> None:
        """Waits until `until(job_states(job_id))`: by default, until the job has ended."""
        _wait(lambda: until(self.job_states(job_id)), f"job {job_id} reaching the state awaited", timeout=timeout)
