//! A design as the files Meshery's UI and `mesheryctl design export` download besides the
//! design itself: a Helm chart (`export=helm-chart`) and an OCI image (`oci=true`).
//!
//! The chart is a packaged Helm chart (`<chart>/Chart.yaml`, `<chart>/templates/manifest.yaml`
//! holding the design's Kubernetes manifests). Meshery writes `apiVersion: v3`, which Helm 3
//! refuses; this writes `v2`, and escapes `{{` in the manifests so Helm renders them as
//! they are. The image is what Meshery's export writes and its import reads back: a
//! `docker save` archive (`manifest.json`, the config, one gzip layer holding `design.yml`
//! and `artifacthub-pkg.yml`). Both are deterministic for the same design.

use serde_json::json;

use crate::registry::archive::{append, gzip, sha256};

/// What a design is exported from.
pub struct Design<'a> {
    pub name: &'a str,
    /// The design file's own `version`, if it has one.
    pub version: Option<&'a str>,
    /// The design file (YAML).
    pub file: &'a str,
    /// Its components as Kubernetes manifests (a YAML stream).
    pub manifests: &'a str,
    /// When the design last changed (RFC 3339): the image's creation time.
    pub updated_at: &'a str,
}

/// A file to download: its name and bytes.
pub struct Export {
    pub file_name: String,
    pub bytes: Vec<u8>,
}

/// Helm's chart names: lowercase letters, digits and `-`, at most 40 here (as Meshery).
pub fn chart_name(design: &str) -> String {
    let mut out = String::new();
    for c in design.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let mut name: String = out.trim_matches('-').chars().take(40).collect();
    name = name.trim_end_matches('-').to_string();
    if name.is_empty() {
        "meshery-design".into()
    } else {
        name
    }
}

/// A SemVer version for Helm: the design's (`v` dropped, missing parts zero) when that is
/// valid SemVer 2.0, else 0.1.0.
pub fn chart_version(version: Option<&str>) -> String {
    let Some(v) = version.map(str::trim) else {
        return "0.1.0".into();
    };
    let v = v.strip_prefix(['v', 'V']).unwrap_or(v);
    let (core, rest) = match v.find(['-', '+']) {
        Some(i) => v.split_at(i),
        None => (v, ""),
    };
    let mut parts: Vec<&str> = core.split('.').collect();
    if parts.is_empty() || parts.len() > 3 {
        return "0.1.0".into();
    }
    parts.resize(3, "0");
    let candidate = format!("{}{rest}", parts.join("."));
    match semver::Version::parse(&candidate) {
        Ok(_) => candidate,
        Err(_) => "0.1.0".into(),
    }
}

/// Manifests made literal for Helm's template engine: each `{{` prints itself. Only the
/// left delimiter needs escaping (Go templates print a `}}` outside an action as it is),
/// and an escape is never preceded by a lone `{` (that would open an action).
fn helm_literal(text: &str) -> String {
    text.replace("{{", r#"{{ "{{" }}"#)
}

fn yaml(value: &serde_json::Value) -> Result<String, String> {
    yaml_serde::to_string(value).map_err(|e| e.to_string())
}

/// The design as a packaged Helm chart (`<chart>-<version>.tgz`, as `helm package` names it).
pub fn helm_chart(design: &Design) -> Result<Export, String> {
    let name = chart_name(design.name);
    let version = chart_version(design.version);
    let chart = yaml(&json!({
        "apiVersion": "v2",
        "name": name,
        "description": format!("Helm chart of the Meshery design {:?}", design.name),
        "type": "application",
        "version": version,
        "appVersion": design.version.unwrap_or(&version),
        "annotations": {"meshery.io/design": design.name},
    }))?;
    let mut tarball = Vec::new();
    {
        let mut builder = tar::Builder::new(&mut tarball);
        append(
            &mut builder,
            &format!("{name}/Chart.yaml"),
            chart.as_bytes(),
        )?;
        append(
            &mut builder,
            &format!("{name}/templates/manifest.yaml"),
            helm_literal(design.manifests).as_bytes(),
        )?;
        builder.finish().map_err(|e| e.to_string())?;
    }
    Ok(Export {
        file_name: format!("{name}-{version}.tgz"),
        bytes: gzip(&tarball)?,
    })
}

/// An image repository name: lowercase letters and digits, runs of anything else one
/// `-`, at most 128 characters, starting and ending with a letter or digit (Meshery only
/// lowercases and drops spaces, which can leave a name Docker refuses).
fn repository(design: &str) -> String {
    let mut out = String::new();
    for c in design
        .chars()
        .flat_map(char::to_lowercase)
        .filter(|c| !c.is_whitespace())
    {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let name: String = out.trim_matches('-').chars().take(128).collect();
    let name = name.trim_end_matches('-').to_string();
    if name.is_empty() {
        "meshery-design".into()
    } else {
        name
    }
}

/// The design as Meshery's OCI image: a `docker save` archive (`<name>.tar`).
pub fn oci_image(design: &Design) -> Result<Export, String> {
    let repo = repository(design.name);
    let package = yaml(&json!({
        "version": chart_version(design.version),
        "name": repo,
        "displayName": design.name,
        "createdAt": design.updated_at,
        "description": format!("The Meshery design {:?}", design.name),
        "provider": {"name": "Meshery"},
    }))?;
    let mut layer_tar = Vec::new();
    {
        let mut builder = tar::Builder::new(&mut layer_tar);
        append(&mut builder, "artifacthub-pkg.yml", package.as_bytes())?;
        append(&mut builder, "design.yml", design.file.as_bytes())?;
        builder.finish().map_err(|e| e.to_string())?;
    }
    let layer = gzip(&layer_tar)?;
    let layer_file = format!("{}.tar.gz", sha256(&layer));
    let config = serde_json::to_vec(&json!({
        "architecture": "",
        "os": "",
        "created": design.updated_at,
        "history": [{"created": design.updated_at}],
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{}", sha256(&layer_tar))]},
        "config": {},
    }))
    .map_err(|e| e.to_string())?;
    let config_file = format!("sha256:{}", sha256(&config));
    let manifest = serde_json::to_vec(&json!([{
        "Config": config_file,
        "RepoTags": [format!("{repo}:latest")],
        "Layers": [layer_file],
    }]))
    .map_err(|e| e.to_string())?;
    let mut image = Vec::new();
    {
        let mut builder = tar::Builder::new(&mut image);
        append(&mut builder, &config_file, &config)?;
        append(&mut builder, &layer_file, &layer)?;
        append(&mut builder, "manifest.json", &manifest)?;
        builder.finish().map_err(|e| e.to_string())?;
    }
    Ok(Export {
        file_name: format!("{repo}.tar"),
        bytes: image,
    })
}

/// Bounds on reading an image back: a design is small.
const MAX_IMAGE_FILE: u64 = 8 << 20;
const MAX_IMAGE_ENTRIES: usize = 64;

/// Files by path.
type Files = Vec<(String, Vec<u8>)>;

/// Every file of a tar archive, bounded; `None` when the bytes are no tar archive.
fn tar_files(bytes: &[u8]) -> Result<Option<Files>, String> {
    use std::io::Read;
    if bytes.get(257..262) != Some(b"ustar".as_slice()) {
        return Ok(None);
    }
    let mut out = Vec::new();
    let mut archive = tar::Archive::new(bytes);
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let entry = entry.map_err(|e| e.to_string())?;
        if out.len() >= MAX_IMAGE_ENTRIES {
            return Err(format!("more than {MAX_IMAGE_ENTRIES} files"));
        }
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry.path().map_err(|e| e.to_string())?;
        let path = path.to_string_lossy().trim_start_matches("./").to_string();
        let mut data = Vec::new();
        entry
            .take(MAX_IMAGE_FILE + 1)
            .read_to_end(&mut data)
            .map_err(|e| e.to_string())?;
        if data.len() as u64 > MAX_IMAGE_FILE {
            return Err(format!("{path} is larger than {MAX_IMAGE_FILE} bytes"));
        }
        out.push((path, data));
    }
    Ok(Some(out))
}

/// The design file of an image as [`oci_image`] (and Meshery) writes it: `design.yml` in its
/// first layer. `None` when the bytes are no such archive (another kind of file).
pub fn design_in_image(bytes: &[u8]) -> Result<Option<String>, String> {
    use std::io::Read;
    let Some(files) = tar_files(bytes)? else {
        return Ok(None);
    };
    let file = |name: &str| files.iter().find(|(n, _)| n == name).map(|(_, d)| d);
    let Some(manifest) = file("manifest.json") else {
        return Ok(None);
    };
    let manifest: serde_json::Value =
        serde_json::from_slice(manifest).map_err(|e| format!("the image's manifest.json: {e}"))?;
    let layer_name = manifest
        .pointer("/0/Layers/0")
        .and_then(serde_json::Value::as_str)
        .ok_or("the image's manifest.json names no layer")?;
    let layer = file(layer_name).ok_or_else(|| format!("the image has no layer {layer_name}"))?;
    let mut layer_tar = Vec::new();
    flate2::read::GzDecoder::new(layer.as_slice())
        .take(MAX_IMAGE_FILE + 1)
        .read_to_end(&mut layer_tar)
        .map_err(|e| format!("the image's layer is not gzip: {e}"))?;
    if layer_tar.len() as u64 > MAX_IMAGE_FILE {
        return Err(format!(
            "the image's layer unpacks to more than {MAX_IMAGE_FILE} bytes"
        ));
    }
    let inner = tar_files(&layer_tar)?.ok_or("the image's layer is not a tar archive")?;
    let design = inner
        .iter()
        .rev()
        .find(|(n, _)| n.rsplit('/').next() == Some("design.yml"))
        .ok_or("the image holds no design.yml")?;
    String::from_utf8(design.1.clone())
        .map(Some)
        .map_err(|_| "the image's design.yml is not UTF-8 text".into())
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn files(tar_bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut archive = tar::Archive::new(tar_bytes);
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let path = e.path().unwrap().to_string_lossy().into_owned();
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                (path, data)
            })
            .collect()
    }

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    const DESIGN: Design = Design {
        name: "My App (prod)",
        version: Some("v1.2"),
        file: "name: My App (prod)\nversion: v1.2\ncomponents: []\n",
        manifests: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: tpl\ndata:\n  t: '{{ .Values.x }} {a}'\n",
        updated_at: "2026-12-06T10:00:00Z",
    };

    #[test]
    fn names_and_versions_follow_helm() {
        assert_eq!(chart_name("My App (prod)"), "my-app-prod");
        assert_eq!(chart_name("  ***  "), "meshery-design");
        assert_eq!(chart_name(&"a".repeat(60)).len(), 40);
        assert_eq!(chart_version(Some("v1.2")), "1.2.0");
        assert_eq!(chart_version(Some("2.0.1-rc.1")), "2.0.1-rc.1");
        assert_eq!(chart_version(Some("latest")), "0.1.0");
        for invalid in [
            "1.0.0-",
            "1.0.0+",
            "1.0.0-a..b",
            "1.0.0-rc.01",
            "99999999999999999999",
        ] {
            assert_eq!(chart_version(Some(invalid)), "0.1.0", "{invalid}");
        }
        assert_eq!(repository("a.-b__c  (d)"), "a-b-c-d");
        assert_eq!(repository(&"x".repeat(300)).len(), 128);
        assert_eq!(chart_version(None), "0.1.0");
        assert_eq!(repository("My App (prod)"), "myapp-prod");
    }

    #[test]
    fn braces_print_themselves_in_a_helm_template() {
        for (text, escaped) in [
            ("{{ .Values.x }}", r#"{{ "{{" }} .Values.x }}"#),
            (r#"{"a":{}}"#, r#"{"a":{}}"#),
            ("{}}}", "{}}}"),
            ("{{{}}", r#"{{ "{{" }}{}}"#),
            ("{{{", r#"{{ "{{" }}{"#),
            ("{ {", "{ {"),
        ] {
            let out = helm_literal(text);
            assert_eq!(out, escaped, "{text}");
            // An escape is an action of its own: never right after a literal `{`.
            assert!(!out.contains(r#"{{{ "{{""#), "{out}");
        }
    }

    #[test]
    fn the_chart_holds_chart_yaml_and_literal_manifests() {
        let chart = helm_chart(&DESIGN).unwrap();
        assert_eq!(chart.file_name, "my-app-prod-1.2.0.tgz");
        let entries = files(&gunzip(&chart.bytes));
        let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "my-app-prod/Chart.yaml",
                "my-app-prod/templates/manifest.yaml"
            ]
        );
        let meta: serde_json::Value = yaml_serde::from_slice(&entries[0].1).unwrap();
        assert_eq!(meta["apiVersion"], "v2");
        assert_eq!(meta["name"], "my-app-prod");
        assert_eq!(meta["version"], "1.2.0");
        assert_eq!(meta["appVersion"], "v1.2");
        let manifest = String::from_utf8(entries[1].1.clone()).unwrap();
        assert!(
            manifest.contains(r#"'{{ "{{" }} .Values.x }} {a}'"#),
            "{manifest}"
        );
        assert_eq!(
            helm_chart(&DESIGN).unwrap().bytes,
            chart.bytes,
            "deterministic"
        );
    }

    #[test]
    fn the_image_is_a_docker_archive_meshery_reads_back() {
        let image = oci_image(&DESIGN).unwrap();
        assert_eq!(image.file_name, "myapp-prod.tar");
        let entries = files(&image.bytes);
        let get = |name: &str| {
            entries
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, d)| d.clone())
                .unwrap_or_else(|| panic!("no {name}"))
        };
        let manifest: serde_json::Value = serde_json::from_slice(&get("manifest.json")).unwrap();
        let config_name = manifest[0]["Config"].as_str().unwrap();
        let config_bytes = get(config_name);
        assert_eq!(config_name, format!("sha256:{}", sha256(&config_bytes)));
        let layer_name = manifest[0]["Layers"][0].as_str().unwrap();
        let layer = get(layer_name);
        assert_eq!(layer_name, format!("{}.tar.gz", sha256(&layer)));
        let layer_tar = gunzip(&layer);
        let config: serde_json::Value = serde_json::from_slice(&config_bytes).unwrap();
        assert_eq!(
            config["rootfs"]["diff_ids"][0],
            format!("sha256:{}", sha256(&layer_tar))
        );
        let inner = files(&layer_tar);
        let design = inner.iter().find(|(n, _)| n == "design.yml").unwrap();
        assert_eq!(design.1, DESIGN.file.as_bytes());
        assert_eq!(manifest[0]["RepoTags"][0], "myapp-prod:latest");
        assert_eq!(
            design_in_image(&image.bytes).unwrap().as_deref(),
            Some(DESIGN.file)
        );
        assert_eq!(design_in_image(DESIGN.file.as_bytes()).unwrap(), None);
        let chart = gunzip(&helm_chart(&DESIGN).unwrap().bytes);
        assert_eq!(
            design_in_image(&chart).unwrap(),
            None,
            "a tar without manifest.json"
        );
    }
}
