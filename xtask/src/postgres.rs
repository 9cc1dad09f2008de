//! A throwaway PostgreSQL server for the tests: Debian's `postgresql` package (installed
//! when missing), `initdb` into a temporary directory, listening on loopback and a socket
//! in that directory, run as the `postgres` user when xtask runs as root (PostgreSQL
//! refuses root). Stopped, and its directory removed, on drop.

use anyhow::{Context, anyhow};
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Command;

use crate::test::{ensure_apt_packages, free_port, is_root, run};

pub struct Postgres {
    bin: PathBuf,
    dir: PathBuf,
    pub port: u16,
    as_postgres: bool,
}

/// The newest installed server's binaries (`/usr/lib/postgresql/<major>/bin`).
fn find_bin() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").exists().then_some((major, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

impl Postgres {
    pub fn start() -> anyhow::Result<Postgres> {
        let bin = match find_bin() {
            Some(bin) => bin,
            None => {
                ensure_apt_packages(&["postgresql"])?;
                find_bin().ok_or_else(|| anyhow!("postgresql installed, but no server binary"))?
            }
        };
        let as_postgres = is_root();
        let dir = std::env::temp_dir().join(format!("meshery-pg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("{}", dir.display()))?;
        if as_postgres {
            run(Command::new("chown").arg("postgres:postgres").arg(&dir))?;
        }
        let port = free_port()?;
        let postgres = Postgres {
            bin,
            dir,
            port,
            as_postgres,
        };
        let data = postgres.dir.join("data");
        let initdb: Vec<OsString> = vec![
            "-D".into(),
            data.clone().into(),
            "-U".into(),
            "postgres".into(),
            "--auth=trust".into(),
            "--encoding=UTF8".into(),
            // A natural-language default collation (ICU "en"), as most real databases
            // have, so the suite proves ordering does not depend on the database's locale.
            "--locale=C.UTF-8".into(),
            "--locale-provider=icu".into(),
            "--icu-locale=en".into(),
            "--no-sync".into(),
        ];
        postgres.run_tool("initdb", &initdb)?;
        // In the configuration, not on the command line, so a plain `pg_ctl start` (a
        // test restarting the server under running replicas) brings the same server back.
        // Tests need no durability across a machine crash; fsync off saves seconds.
        // TLS with a certificate for 127.0.0.1 from a CA of its own (tests connect with
        // sslmode=verify-full and that CA as --ca-file).
        postgres.make_certificates()?;
        let settings = format!(
            "\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{dir}'\nfsync = off\nmax_connections = 300\nssl = on\nssl_cert_file = '{dir}/server.crt'\nssl_key_file = '{dir}/server.key'\n",
            dir = postgres.dir.display()
        );
        std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .and_then(|mut f| std::io::Write::write_all(&mut f, settings.as_bytes()))
            .with_context(|| "writing postgresql.conf")?;
        postgres.pg_ctl("start")?;
        println!(
            "xtask: PostgreSQL ({}) on 127.0.0.1:{port}",
            postgres.bin.display()
        );
        Ok(postgres)
    }

    /// The CA that signed the server's certificate (PEM file).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    /// A CA and a server certificate for 127.0.0.1 it signed, with openssl.
    fn make_certificates(&self) -> anyhow::Result<()> {
        crate::test::ensure_apt("openssl", &["openssl"])?;
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let in_dir = |args: &[&str]| {
            let mut c = Command::new("openssl");
            c.current_dir(&self.dir).args(args);
            run(&mut c)
        };
        in_dir(
            &[
                &["req", "-x509"][..],
                &ec[..],
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.crt",
                    "-subj",
                    "/CN=meshery test CA",
                    "-days",
                    "2",
                ][..],
            ]
            .concat(),
        )?;
        in_dir(
            &[
                &["req"][..],
                &ec[..],
                &[
                    "-keyout",
                    "server.key",
                    "-out",
                    "server.csr",
                    "-subj",
                    "/CN=127.0.0.1",
                ][..],
            ]
            .concat(),
        )?;
        std::fs::write(
            self.dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )?;
        in_dir(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ])?;
        // PostgreSQL refuses a key others can read, and must own it.
        if self.as_postgres {
            run(Command::new("chown")
                .arg("postgres:postgres")
                .arg(self.dir.join("server.key"))
                .arg(self.dir.join("server.crt")))?;
        }
        run(Command::new("chmod")
            .arg("600")
            .arg(self.dir.join("server.key")))?;
        Ok(())
    }

    /// The administrator's URL (trust authentication on loopback), without TLS: the
    /// suites open hundreds of connections, and one test checks TLS on its own.
    pub fn admin_url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres?sslmode=disable",
            self.port
        )
    }

    /// The command that controls this server, for tests that restart it: append
    /// `start` or `stop` (space-separated words; the paths have no spaces).
    pub fn control_command(&self) -> String {
        let mut words = Vec::new();
        if self.as_postgres {
            words.extend(["runuser", "-u", "postgres", "--"].map(String::from));
        }
        words.push(self.bin.join("pg_ctl").display().to_string());
        words.extend(["-w", "-m", "fast", "-D"].map(String::from));
        words.push(self.dir.join("data").display().to_string());
        words.push("-l".into());
        words.push(self.dir.join("postgres.log").display().to_string());
        words.join(" ")
    }

    /// `pg_ctl start|stop` on this server, waiting until it is done.
    pub fn pg_ctl(&self, action: &str) -> anyhow::Result<()> {
        let data = self.dir.join("data");
        let log = self.dir.join("postgres.log");
        let mut args: Vec<OsString> = vec![action.into(), "-w".into(), "-D".into(), data.into()];
        if action == "start" {
            args.extend(["-l".into(), log.clone().into()]);
        } else {
            args.extend(["-m".into(), "fast".into()]);
        }
        self.run_tool("pg_ctl", &args).map_err(|e| {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            anyhow!("{e:#}\n{log}")
        })
    }

    fn run_tool(&self, tool: &str, args: &[OsString]) -> anyhow::Result<()> {
        let program = self.bin.join(tool);
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        command.args(args).current_dir(&self.dir);
        run(&mut command)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Err(e) = self.pg_ctl("stop") {
            eprintln!("xtask: stopping PostgreSQL: {e:#}");
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
