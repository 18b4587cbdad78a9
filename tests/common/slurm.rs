//! A real Slurm cluster on this machine for the tests: a munge daemon, `slurmctld` and `slurmd`
//! (Debian's packages), each started in the foreground (`-D`) under a temporary folder, with a
//! `slurm.conf` written for this machine (its real CPU count, one partition, free ports, no
//! cgroups, no systemd, no accounting database). Dropping the [`Cluster`] cancels its jobs and
//! stops the three daemons it started.
//!
//! Authentication is `auth/munge` with a key and a socket of the cluster's own, so nothing of the
//! machine's own munge or Slurm setup is touched or needed.

use std::io::Read;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::tools;

/// The daemons and the commands a test needs, from Debian's `slurmctld`, `slurmd`,
/// `slurm-client` and `munge`.
const PROGRAMS: &[&str] = &[
    "munged",
    "slurmctld",
    "slurmd",
    "sbatch",
    "scontrol",
    "sinfo",
    "scancel",
];

pub struct Cluster {
    pub dir: PathBuf,
    conf: PathBuf,
    daemons: Vec<(&'static str, Child)>,
}

/// A port nobody listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free local port")
}

impl Cluster {
    /// Start a cluster in `dir` (made empty first). Without Slurm installed the test fails,
    /// naming the packages (`.ci/run` installs them).
    pub fn start(dir: &Path) -> Cluster {
        tools::require(PROGRAMS, tools::SLURM_PACKAGES);
        let _ = std::fs::remove_dir_all(dir);
        for sub in ["munge", "state", "spool", "log", "jobs"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        // munged checks that its key is private and that its socket's folder is reachable.
        let munge = dir.join("munge");
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&munge, std::fs::Permissions::from_mode(0o755)).unwrap();
        let key = munge.join("munge.key");
        let mut random = [0u8; 1024];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut random))
            .unwrap();
        std::fs::write(&key, random).unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let socket = munge.join("munge.socket");

        let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_string();
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let d = dir.display();
        let conf = dir.join("slurm.conf");
        std::fs::write(
            &conf,
            format!(
                "# Written by tests/common/slurm.rs: one node (this machine), one partition.
ClusterName=visage-test
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser={user}
SlurmdUser={user}
AuthType=auth/munge
CredType=cred/munge
# cred_expire is also how long a requeued job waits before it may start again (default 120 s).
AuthInfo=socket={socket},cred_expire=5
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/log/slurmctld.log
SlurmdLogFile={d}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SwitchType=switch/none
MpiDefault=none
MailProg=/bin/true
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=5,bf_interval=5
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
ReturnToService=2
MinJobAge=3600
KillWait=5
NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN
PartitionName=visage Nodes=localhost Default=YES MaxTime=INFINITE State=UP
",
                ctld_port = free_port(),
                slurmd_port = free_port(),
                socket = socket.display(),
            ),
        )
        .unwrap();

        let mut cluster = Cluster {
            dir: dir.to_path_buf(),
            conf: conf.clone(),
            daemons: Vec::new(),
        };
        let m = |f: &str| munge.join(f).display().to_string();
        cluster.daemon(
            "munged",
            &[
                "-F",
                "--force",
                &format!("--socket={}", socket.display()),
                &format!("--key-file={}", key.display()),
                &format!("--log-file={}", m("munged.log")),
                &format!("--pid-file={}", m("munged.pid")),
                &format!("--seed-file={}", m("munged.seed")),
            ],
        );
        cluster.wait_for("munged's socket", Duration::from_secs(20), |_| {
            socket.exists()
        });
        let conf_arg = conf.display().to_string();
        cluster.daemon("slurmctld", &["-D", "-i", "-f", &conf_arg]);
        cluster.daemon("slurmd", &["-D", "-N", "localhost", "-f", &conf_arg]);
        cluster.wait_for("the node to be idle", Duration::from_secs(60), |c| {
            let out = c.command("sinfo", &["-h", "-o", "%t"]);
            String::from_utf8_lossy(&out.stdout).trim() == "idle"
        });
        cluster
    }

    fn daemon(&mut self, name: &'static str, args: &[&str]) {
        let log = |ext: &str| std::fs::File::create(self.dir.join(format!("log/{name}.{ext}")));
        let program = tools::find(name).expect("found when the cluster started");
        let child = Command::new(program)
            .args(args)
            .env("SLURM_CONF", &self.conf)
            .stdin(Stdio::null())
            .stdout(log("out").unwrap())
            .stderr(log("err").unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        self.daemons.push((name, child));
    }

    /// Wait until `ready`; a daemon that exits, or the time running out, fails with its logs.
    fn wait_for(&mut self, what: &str, limit: Duration, ready: impl Fn(&Self) -> bool) {
        let started = Instant::now();
        while !ready(self) {
            for (name, child) in &mut self.daemons {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "{name} exited ({status}) waiting for {what}:\n{}",
                        self_logs(&self.dir)
                    );
                }
            }
            if started.elapsed() > limit {
                panic!("no {what} after {limit:?}:\n{}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// A Slurm client command against this cluster.
    pub fn command(&self, program: &str, args: &[&str]) -> Output {
        Command::new(program)
            .args(args)
            .env("SLURM_CONF", &self.conf)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
    }

    /// `sbatch --parsable ARGS` with extra environment variables (exported to the job, as sbatch
    /// does by default); returns the job id.
    pub fn sbatch(&self, args: &[&str], envs: &[(&str, &str)]) -> String {
        let mut cmd = Command::new("sbatch");
        cmd.arg("--parsable")
            .args(args)
            .env("SLURM_CONF", &self.conf);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run sbatch");
        assert!(
            out.status.success(),
            "sbatch {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        id.split(';').next().unwrap().to_string()
    }

    /// `scontrol ARGS`, which must succeed.
    pub fn scontrol(&self, args: &[&str]) {
        let out = self.command("scontrol", args);
        assert!(
            out.status.success(),
            "scontrol {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A job's (or array task's, `J_T`) state: PENDING, RUNNING, COMPLETED, FAILED, ...
    pub fn state(&self, job: &str) -> String {
        let out = self.command("scontrol", &["show", "job", job]);
        let text = String::from_utf8_lossy(&out.stdout);
        text.split_whitespace()
            .find_map(|w| w.strip_prefix("JobState="))
            .unwrap_or("UNKNOWN")
            .to_string()
    }

    /// Wait until a job reaches a state that is not PENDING, RUNNING, CONFIGURING, COMPLETING or
    /// REQUEUED, and return it.
    pub fn wait(&self, job: &str, limit: Duration) -> String {
        let started = Instant::now();
        loop {
            let state = self.state(job);
            let active = [
                "PENDING",
                "RUNNING",
                "CONFIGURING",
                "COMPLETING",
                "REQUEUED",
            ];
            if !active.contains(&state.as_str()) {
                return state;
            }
            if started.elapsed() > limit {
                panic!("job {job} still {state} after {limit:?}:\n{}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// The daemons' logs and the jobs' output, for a failure message.
    pub fn logs(&self) -> String {
        self_logs(&self.dir)
    }
}

/// The last lines of every log and job output file under `dir`.
fn self_logs(dir: &Path) -> String {
    let mut out = String::new();
    for sub in ["log", "jobs"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join(sub))
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        files.sort();
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(15)..].join("\n");
            out.push_str(&format!("--- {}\n{tail}\n", f.display()));
        }
    }
    out
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Jobs first (their processes belong to slurmstepd, not to the daemons), then the daemons.
        let _ = self.command("scancel", &["--partition=visage"]);
        std::thread::sleep(Duration::from_secs(1));
        for (_, child) in self.daemons.iter_mut().rev() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
