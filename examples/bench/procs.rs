//! The processes a bench run starts (the server, a bare axum baseline, nginx), the core
//! budget each gets, and what the kernel says about their CPU time and memory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Which CPUs the client (this process) and the servers may use: the client gets the first
/// allowed CPU, the servers the rest, so neither takes the other's time. With one CPU
/// nothing is pinned (and the figures say less).
#[derive(Clone, Debug)]
pub struct Budget {
    pub client: Vec<usize>,
    pub servers: Vec<usize>,
}

fn allowed() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; the kernel fills it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Vec::new();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect()
    }
}

fn cpu_set(cpus: &[usize]) -> libc::cpu_set_t {
    // SAFETY: as above; CPU_SET only sets bits below CPU_SETSIZE, which `allowed` yields.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &c in cpus {
            libc::CPU_SET(c, &mut set);
        }
        set
    }
}

impl Budget {
    pub fn plan() -> Budget {
        let cpus = allowed();
        match cpus.split_first() {
            Some((first, rest)) if !rest.is_empty() => Budget {
                client: vec![*first],
                servers: rest.to_vec(),
            },
            _ => Budget {
                client: cpus.clone(),
                servers: cpus,
            },
        }
    }

    /// Pins the calling thread (and the threads it starts later) to the client's CPUs.
    pub fn pin_client(&self) {
        let set = cpu_set(&self.client);
        // SAFETY: `set` lives across the call; 0 is this thread.
        let rc =
            unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
        assert_eq!(
            rc,
            0,
            "pinning the client: {}",
            std::io::Error::last_os_error()
        );
    }

    /// Starts `cmd` pinned to the servers' CPUs (or the client's, for a client tool).
    pub fn pin(cmd: &mut tokio::process::Command, cpus: &[usize]) {
        let set = cpu_set(cpus);
        // SAFETY: sched_setaffinity is a plain system call, safe between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
}

/// Seconds of CPU (user + system) process `pid` has used; 0 once it is gone.
pub fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (ticks(11) + ticks(12)) / hz.max(1.0)
}

/// Resident memory of `pid`, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A child process serving HTTP on `addr`; killed when dropped.
pub struct Served {
    pub name: &'static str,
    pub addr: SocketAddr,
    pub pid: u32,
    child: tokio::process::Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    l.local_addr().expect("its address").port()
}

impl Served {
    /// Starts `cmd` (its output goes to a log in `dir`), then waits until `ready` answers 200.
    async fn start(
        name: &'static str,
        mut cmd: tokio::process::Command,
        dir: tempfile::TempDir,
        port: u16,
        ready: &str,
    ) -> Served {
        let log = dir.path().join("output.log");
        let out = std::fs::File::create(&log).expect("a log file");
        let err = out.try_clone().expect("a log file");
        let mut child = cmd
            .stdout(out)
            .stderr(err)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        let pid = child.id().expect("a running child");
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let url = format!("http://{addr}{ready}");
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = client.get(&url).send().await
                && r.status().is_success()
            {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("{name} exited ({status}):\n{}", tail(&log));
            }
            assert!(
                Instant::now() < deadline,
                "{name} not ready in 30 s:\n{}",
                tail(&log)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Served {
            name,
            addr,
            pid,
            child,
            log,
            _dir: dir,
        }
    }

    /// The release (or, for `--quick`, debug) `meshery-server` on its embedded defaults,
    /// with `args` added, in a fresh home.
    pub async fn meshery(bin: &Path, budget: &Budget, args: &[String]) -> Served {
        let dir = tempfile::tempdir().expect("a temporary home");
        let port = free_port();
        let mut cmd = tokio::process::Command::new(bin);
        cmd.arg("--port")
            .arg(port.to_string())
            .arg("--home")
            .arg(dir.path().join("home"))
            .args(args)
            .env_remove("RUST_LOG");
        Budget::pin(&mut cmd, &budget.servers);
        Served::start("meshery-server", cmd, dir, port, "/healthz/ready").await
    }

    /// Bare axum, built like the server (this bench binary, `baseline` mode).
    pub async fn bare_axum(budget: &Budget) -> Served {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let port = free_port();
        let mut cmd = tokio::process::Command::new(std::env::current_exe().expect("this binary"));
        cmd.arg("baseline").arg(port.to_string());
        Budget::pin(&mut cmd, &budget.servers);
        Served::start("bare axum", cmd, dir, port, "/").await
    }

    /// nginx answering `GET /` with "ok": one process, no logs, files in a temporary
    /// directory.
    pub async fn nginx(budget: &Budget) -> Served {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let port = free_port();
        let d = dir.path().display();
        let conf = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\n\
             error_log {d}/error.log warn;\n\
             events {{ worker_connections 4096; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  \
             fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  \
             server {{\n    listen 127.0.0.1:{port};\n    location / {{ return 200 \"ok\"; }}\n  }}\n}}\n"
        );
        let path = dir.path().join("nginx.conf");
        std::fs::write(&path, conf).expect("nginx.conf");
        let nginx = ["/usr/sbin/nginx", "nginx"]
            .into_iter()
            .find(|p| !p.starts_with('/') || Path::new(p).exists())
            .unwrap_or("nginx");
        let mut cmd = tokio::process::Command::new(nginx);
        cmd.arg("-e")
            .arg(dir.path().join("error.log"))
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&path);
        Budget::pin(&mut cmd, &budget.servers);
        Served::start("nginx", cmd, dir, port, "/").await
    }

    pub fn cpu_secs(&self) -> f64 {
        cpu_secs(self.pid)
    }

    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.pid)
    }

    /// Panics with the process's output if it has died.
    pub fn check_alive(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited ({status}):\n{}", self.name, tail(&self.log));
        }
    }
}

fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}
