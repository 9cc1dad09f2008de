//! The Kubernetes manifests in deploy/kubernetes agree with the server: every variable
//! they set is one `meshery-server` reads, ports and probes point at what it serves, the
//! Secret holds what the Deployment takes from it, and the server starts and answers its
//! probes with exactly the Deployment's environment.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Every document of every manifest, by kind.
fn manifests() -> BTreeMap<String, Value> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes");
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for doc in yaml_serde::Deserializer::from_str(&text) {
            let value: Value = serde::Deserialize::deserialize(doc).unwrap();
            let kind = value["kind"].as_str().unwrap().to_string();
            assert!(
                out.insert(kind.clone(), value).is_none(),
                "two {kind} manifests"
            );
        }
    }
    out
}

/// The environment variables `meshery-server --help` names, and RUST_LOG (tracing's).
fn server_env() -> BTreeSet<String> {
    let help = Command::new(env!("CARGO_BIN_EXE_meshery-server"))
        .arg("--help")
        .output()
        .unwrap();
    let text = String::from_utf8(help.stdout).unwrap();
    let mut names: BTreeSet<String> = text
        .split("[env: ")
        .skip(1)
        .map(|rest| rest.split(['=', ']']).next().unwrap().to_string())
        .collect();
    assert!(names.contains("MESHERY_DATABASE_URL"), "{names:?}");
    names.insert("RUST_LOG".into());
    names
}

#[test]
fn the_manifests_use_what_the_server_reads_and_serves() {
    let m = manifests();
    let known = server_env();
    let deployment = &m["Deployment"];
    assert_eq!(deployment["spec"]["replicas"], 3);
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];

    // Every variable, set directly or from the ConfigMap, is one the server reads.
    let env = container["env"].as_array().unwrap();
    let mut names: Vec<String> = env
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        container["envFrom"][0]["configMapRef"]["name"],
        m["ConfigMap"]["metadata"]["name"]
    );
    names.extend(m["ConfigMap"]["data"].as_object().unwrap().keys().cloned());
    let unknown: Vec<&String> = names.iter().filter(|n| !known.contains(*n)).collect();
    assert!(
        unknown.is_empty(),
        "not read by meshery-server: {unknown:?}"
    );

    // The port the server listens on is the container's `http` port, which the probes
    // and the Service use; the probe paths are the server's.
    let value_of = |name: &str| {
        env.iter()
            .find(|e| e["name"] == name)
            .and_then(|e| e["value"].as_str())
            .map(str::to_string)
    };
    let port: u64 = value_of("PORT").unwrap().parse().unwrap();
    let ports = container["ports"].as_array().unwrap();
    assert!(
        ports
            .iter()
            .any(|p| p["name"] == "http" && p["containerPort"] == port)
    );
    assert_eq!(value_of("MESHERY_BIND").as_deref(), Some("0.0.0.0"));
    for (probe, path) in [
        ("readinessProbe", "/healthz/ready"),
        ("livenessProbe", "/healthz/live"),
    ] {
        assert_eq!(container[probe]["httpGet"]["path"], path, "{probe}");
        assert_eq!(container[probe]["httpGet"]["port"], "http", "{probe}");
    }
    let service = &m["Service"];
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "http");
    assert_eq!(
        service["spec"]["selector"],
        deployment["spec"]["selector"]["matchLabels"]
    );

    // What comes from the Secret is in it: the database URL and the sealing key file.
    let secret = &m["Secret"];
    let secret_name = secret["metadata"]["name"].as_str().unwrap();
    let keys = secret["stringData"].as_object().unwrap();
    let database = env
        .iter()
        .find(|e| e["name"] == "MESHERY_DATABASE_URL")
        .unwrap();
    let reference = &database["valueFrom"]["secretKeyRef"];
    assert_eq!(reference["name"], secret_name);
    assert!(keys.contains_key(reference["key"].as_str().unwrap()));
    let key_file = value_of("MESHERY_SECRET_KEY_FILE").unwrap();
    let volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["secret"]["secretName"] == secret_name)
        .unwrap();
    let mount = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == volume["name"])
        .unwrap();
    let item = &volume["secret"]["items"][0];
    assert!(keys.contains_key(item["key"].as_str().unwrap()));
    assert_eq!(
        key_file,
        format!(
            "{}/{}",
            mount["mountPath"].as_str().unwrap(),
            item["path"].as_str().unwrap()
        )
    );
    // Every object is in the one namespace.
    for (kind, doc) in &m {
        if kind != "Namespace" {
            assert_eq!(
                doc["metadata"]["namespace"], m["Namespace"]["metadata"]["name"],
                "{kind}"
            );
        }
    }
}

#[test]
fn the_server_starts_and_answers_its_probes_with_the_deployments_environment() {
    let m = manifests();
    let container = &m["Deployment"]["spec"]["template"]["spec"]["containers"][0];
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("secret.key");
    std::fs::write(&key, format!("{}\n", "ab".repeat(32))).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_meshery-server"));
    command.env_clear().stdout(Stdio::null());
    for (name, value) in m["ConfigMap"]["data"].as_object().unwrap() {
        command.env(name, value.as_str().unwrap());
    }
    // The Deployment's values, where this machine needs its own: a free port, a
    // temporary home, SQLite instead of the Secret's database, the key written above.
    for e in container["env"].as_array().unwrap() {
        let name = e["name"].as_str().unwrap();
        let value = match name {
            "PORT" => port.to_string(),
            "MESHERY_BIND" => "127.0.0.1".into(),
            "MESHERY_HOME" => dir.path().join("home").display().to_string(),
            "MESHERY_DATABASE_URL" => {
                format!("sqlite://{}/meshery.db", dir.path().display())
            }
            "MESHERY_SECRET_KEY_FILE" => key.display().to_string(),
            _ => e["value"].as_str().unwrap().to_string(),
        };
        command.env(name, value);
    }
    let mut child = command.spawn().unwrap();
    let ready = |path: &str| {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        write!(stream, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).ok()?;
        std::str::from_utf8(&head[9..12]).ok()?.parse::<u16>().ok()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while ready("/healthz/ready") != Some(200) {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("meshery-server exited with {status}");
        }
        assert!(Instant::now() < deadline, "not ready within 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(ready("/healthz/live"), Some(200));
    let _ = child.kill();
    let _ = child.wait();
}
