//! The test Kubernetes API server (`tests/support/kube_api.rs`) as a process, for the
//! browser suite: never shipped. It writes a kubeconfig for itself, then serves until it
//! is killed or its standard input closes.
//!
//! Usage: kube-api <kubeconfig-out> [context-name] [ready-after-ms]
//!   ready-after-ms: workloads report ready this long after each write (a controller).

#[path = "../../tests/support/kube_api.rs"]
mod kube_api;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(out) = args.first() else {
        eprintln!("usage: kube-api <kubeconfig-out> [context-name] [ready-after-ms]");
        return std::process::ExitCode::from(2);
    };
    let name = args.get(1).map_or("test-cluster", String::as_str);
    meshery::tls::install_crypto();
    let api = kube_api::KubeApi::start(Some("browser-suite-token")).await;
    if let Some(ms) = args.get(2).and_then(|m| m.parse::<u64>().ok()) {
        api.run_controller(Some(std::time::Duration::from_millis(ms)));
    }
    // Written whole under another name, then renamed: a reader never sees half a file.
    let partial = format!("{out}.partial");
    if let Err(e) =
        std::fs::write(&partial, api.kubeconfig(name)).and_then(|()| std::fs::rename(&partial, out))
    {
        eprintln!("kube-api: {out}: {e}");
        return std::process::ExitCode::FAILURE;
    }
    println!("kube-api: serving {} (kubeconfig {out})", api.url);
    // Until stdin closes (the parent went away) or a signal ends the process.
    let _ = tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
    })
    .await;
    api.stop().await;
    std::process::ExitCode::SUCCESS
}
