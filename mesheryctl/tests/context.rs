//! `mesheryctl system context` against a config file in a temporary HOME.

use std::path::Path;
use std::process::Command;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(home: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_mesheryctl"))
        .args(args)
        .env("HOME", home)
        .env_remove("MESHERY_CONFIG")
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn config(home: &Path) -> yaml_serde::Value {
    yaml_serde::from_str(&std::fs::read_to_string(home.join(".meshery/config.yaml")).unwrap())
        .unwrap()
}

#[test]
fn contexts_are_created_listed_switched_viewed_and_deleted() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();

    // No config yet: the default local context, nothing written.
    let list = run(home, &["system", "context", "list"]);
    assert_eq!(
        (list.code, list.stdout.trim()),
        (0, "* local\thttp://localhost:9081")
    );
    assert!(!home.join(".meshery/config.yaml").exists());

    let created = run(
        home,
        &[
            "system",
            "context",
            "create",
            "prod",
            "--url",
            "https://meshery.example.com/",
            "-p",
            "Meshery",
        ],
    );
    assert_eq!(created.code, 0, "{}", created.stderr);
    let file = config(home);
    assert_eq!(file["current-context"], "local");
    assert_eq!(
        file["contexts"]["prod"]["endpoint"],
        "https://meshery.example.com"
    );
    assert_eq!(file["contexts"]["prod"]["provider"], "Meshery");
    assert_eq!(file["contexts"]["prod"]["token"], "default");
    assert_eq!(
        file["contexts"]["local"]["endpoint"],
        "http://localhost:9081"
    );
    assert_eq!(file["tokens"][0]["location"], "auth.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(home.join(".meshery/config.yaml"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let switched = run(home, &["system", "context", "switch", "prod"]);
    assert_eq!(switched.code, 0);
    let list = run(home, &["system", "context", "list"]);
    assert_eq!(
        list.stdout.trim_end(),
        "  local\thttp://localhost:9081\n* prod\thttps://meshery.example.com"
    );
    let view = run(home, &["system", "context", "view"]);
    let viewed: yaml_serde::Value = yaml_serde::from_str(&view.stdout).unwrap();
    assert_eq!(viewed["prod"]["endpoint"], "https://meshery.example.com");

    // Errors: distinct exit codes, a message that says what to do, nothing changed.
    let before = std::fs::read_to_string(home.join(".meshery/config.yaml")).unwrap();
    let cases: [(&[&str], i32, &str); 6] = [
        (
            &["system", "context", "switch", "staging"],
            4,
            "no context \"staging\"; there are: local, prod",
        ),
        (&["system", "context", "delete", "staging"], 4, "no context"),
        (
            &["system", "context", "delete", "prod"],
            5,
            "switch to another first",
        ),
        (&["system", "context", "create", "prod"], 5, "exists"),
        (
            &["system", "context", "create", "x", "--url", "ftp://host"],
            2,
            "http or https",
        ),
        (&["system", "context", "view", "nope"], 4, "no context"),
    ];
    for (args, code, message) in cases {
        let r = run(home, args);
        assert_eq!(r.code, code, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(message), "{args:?}: {}", r.stderr);
    }
    assert_eq!(
        std::fs::read_to_string(home.join(".meshery/config.yaml")).unwrap(),
        before
    );

    let deleted = run(home, &["system", "context", "delete", "local"]);
    assert_eq!(deleted.code, 0);
    assert!(config(home)["contexts"].get("local").is_none());
}

#[test]
fn keys_it_does_not_know_are_kept() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    std::fs::create_dir_all(home.join(".meshery")).unwrap();
    std::fs::write(
        home.join(".meshery/config.yaml"),
        "contexts:\n  local:\n    endpoint: http://localhost:9081\n    token: default\n    platform: kubernetes\n    components: [meshery-istio]\n    channel: stable\ncurrent-context: local\ntokens:\n- name: default\n  location: auth.json\nextra: {keep: me}\n",
    )
    .unwrap();
    assert_eq!(
        run(
            home,
            &[
                "system",
                "context",
                "create",
                "b",
                "-u",
                "http://10.0.0.2:9081"
            ]
        )
        .code,
        0
    );
    let file = config(home);
    assert_eq!(file["contexts"]["local"]["components"][0], "meshery-istio");
    assert_eq!(file["contexts"]["local"]["channel"], "stable");
    assert_eq!(file["contexts"]["local"]["platform"], "kubernetes");
    assert_eq!(file["extra"]["keep"], "me");

    // A file that is not a mesheryctl config is reported, not overwritten.
    std::fs::write(home.join(".meshery/config.yaml"), "contexts: [1, 2]\n").unwrap();
    let r = run(home, &["system", "context", "create", "c"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("config.yaml"), "{}", r.stderr);
    assert_eq!(
        std::fs::read_to_string(home.join(".meshery/config.yaml")).unwrap(),
        "contexts: [1, 2]\n"
    );
}
