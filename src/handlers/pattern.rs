use crate::app::App;
use crate::designs::{self, Checked};
use crate::error::{ApiError, codes};
use crate::generated::rest::*;
use crate::models::EventsChanged;
use crate::remote::ReadError;
use crate::server::Api;
use crate::session::Session;

/// The largest file an import fetches from a URL.
const MAX_IMPORT: usize = 4 << 20;

/// What a design is downloaded as.
#[derive(Clone, Copy)]
enum Source {
    Design,
    Manifests,
}

/// Meshery's source-type names, any case, words joined by space, `-` or `_`.
fn source_type(name: &str) -> Option<Source> {
    let words: String = name
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '_'))
        .flat_map(char::to_lowercase)
        .collect();
    match words.as_str() {
        "design" | "mesherydesign" => Some(Source::Design),
        "kubernetesmanifest" | "kubernetesmanifests" | "manifest" | "manifests" => {
            Some(Source::Manifests)
        }
        _ => None,
    }
}

/// What `GET /api/pattern/download/{id}` answers.
#[derive(Clone, Copy)]
enum Download {
    Yaml(Source),
    HelmChart,
    Oci,
}

fn is_helm_chart(export: &str) -> bool {
    let words: String = export
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '_'))
        .flat_map(char::to_lowercase)
        .collect();
    words == "helmchart"
}

/// A download's file name: the design's, without what a header or a file system refuses.
fn file_stem(name: &str) -> String {
    let stem: String = name
        .chars()
        .filter(|c| {
            !c.is_control() && !matches!(c, '"' | '\\' | '/' | ':' | '*' | '?' | '<' | '>' | '|')
        })
        .collect();
    if stem.trim().is_empty() {
        "design".into()
    } else {
        stem.trim().to_string()
    }
}

/// `Content-Disposition` for a file (RFC 6266): an ASCII name, and the UTF-8 one when
/// they differ.
fn disposition(file: &str) -> String {
    let ascii: String = file
        .chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() {
                c
            } else {
                '_'
            }
        })
        .collect();
    if ascii == file {
        return format!("attachment; filename=\"{file}\"");
    }
    let encoded = super::percent_encode(file);
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// The design file's own `version`, if it states one.
fn design_version(file: &str) -> Option<String> {
    let doc: serde_json::Value = yaml_serde::from_str(file).ok()?;
    match doc.get("version")? {
        serde_json::Value::String(v) if !v.trim().is_empty() => Some(v.trim().to_string()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl App {
    fn design_as(
        &self,
        pattern: crate::models::Pattern,
        format: Source,
    ) -> Result<String, ApiError> {
        Ok(match format {
            Source::Design => pattern.pattern_file,
            Source::Manifests => {
                let checked = designs::check(&pattern.pattern_file, &self.registry)?;
                designs::to_manifests(&checked)?
            }
        })
    }
}

/// The design a deploy body names: (`patternId`, `patternFile`).
fn design_of(body: &crate::models::PatternDeployInput) -> (Option<&str>, Option<&str>) {
    (
        body.pattern_id.as_ref().map(|i| i.as_str()),
        body.pattern_file.as_ref().map(|f| f.as_str()),
    )
}

fn deploy_options(
    undeploy: bool,
    dry_run: Option<bool>,
    skip_crd: Option<bool>,
    verify: Option<bool>,
) -> crate::deploy::Options {
    crate::deploy::Options {
        undeploy,
        dry_run: dry_run.unwrap_or(false),
        skip_crd: skip_crd.unwrap_or(false),
        verify: verify.unwrap_or(false),
    }
}

impl App {
    /// Deploys or undeploys the design a request names (a stored one by id, or a file)
    /// on the contexts it names: ids repeated or comma-separated, all when none.
    pub(crate) async fn deploy_design(
        &self,
        session: &Session,
        pattern_id: Option<&str>,
        pattern_file: Option<&str>,
        contexts: &[String],
        options: crate::deploy::Options,
    ) -> Result<crate::models::PatternDeployResult, ApiError> {
        // Meshery's clients name the design a file came from; mesheryctl sends the zero
        // UUID for a file of its own.
        let pattern_id =
            pattern_id.filter(|id| !id.is_empty() && id.chars().any(|c| c != '0' && c != '-'));
        let (text, pattern_id) = match (pattern_file, pattern_id) {
            (Some(file), id) => {
                // The file is what is deployed; the id only when the user can read it.
                let named = match id {
                    Some(id) => self.designs.readable(session, id).await.ok().map(|p| p.id),
                    None => None,
                };
                (file.to_string(), named)
            }
            (None, Some(id)) => {
                let pattern = self.designs.readable(session, id).await?;
                (pattern.pattern_file, Some(pattern.id))
            }
            (None, None) => {
                return Err(ApiError::bad_request(
                    "give the design: patternFile (a design file) or patternId (a stored design)",
                ));
            }
        };
        let checked = designs::check(&text, &self.registry)?;
        let contexts: Vec<String> = contexts
            .iter()
            .flat_map(|c| c.split(','))
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect();
        Ok(self
            .deployer
            .run(session, &checked, pattern_id, &contexts, options)
            .await?)
    }

    /// Fetches an import URL as text (see [`App::fetch_bytes`]).
    async fn fetch_import(&self, url: &str) -> Result<String, ApiError> {
        String::from_utf8(self.fetch_bytes(url).await?)
            .map_err(|_| ApiError::bad_request(format!("{url} is not UTF-8 text")))
    }

    /// Fetches an import URL under the same policy as load-test targets: resolved once,
    /// link-local and metadata addresses refused, the checked address used.
    pub(crate) async fn fetch_bytes(&self, url: &str) -> Result<Vec<u8>, ApiError> {
        let target = self.config.targets.resolve(url).await?;
        let gateway =
            |why: String| ApiError::new(502, codes::BAD_GATEWAY, format!("fetching {url}: {why}"));
        // Redirects could name another host, which the policy has not checked.
        let client = crate::remote::http_client_builder(&self.outbound_tls)
            .dns_resolver(std::sync::Arc::new(crate::policy::Pinned(target)))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ApiError::internal("building an HTTP client", e))?;
        let response = client
            .get(url)
            .send()
            .await
            .map_err(|e| gateway(crate::fault::chain(&e.without_url())))?;
        if !response.status().is_success() {
            return Err(gateway(format!("answered {}", response.status())));
        }
        crate::remote::read_capped(response, MAX_IMPORT)
            .await
            .map_err(|e| match e {
                ReadError::TooLarge(cap) => {
                    ApiError::bad_request(format!("{url} is larger than {cap} bytes"))
                }
                ReadError::Io(why) => gateway(why.to_string()),
            })
    }

    async fn import(
        &self,
        session: &Session,
        input: crate::models::PatternImport,
    ) -> Result<crate::models::Pattern, ApiError> {
        let (text, fallback) = match (&input.file, &input.url) {
            (Some(file), None) => {
                let text = designs::bytes_text(file, "file")?;
                let stem = input
                    .file_name
                    .as_deref()
                    .map(|f| f.rsplit(['/', '\\']).next().unwrap_or(f))
                    .map(|f| f.split('.').next().unwrap_or(f).to_string());
                (text, stem)
            }
            (None, Some(url)) => {
                let text = self.fetch_import(url).await?;
                let stem = url
                    .trim_end_matches('/')
                    .rsplit('/')
                    .next()
                    .map(|f| f.split(['.', '?']).next().unwrap_or(f).to_string());
                (text, stem)
            }
            _ => {
                return Err(ApiError::bad_request(
                    "give exactly one of `file` (base64) and `url`",
                ));
            }
        };
        let given = input.name.as_ref().map(|n| n.to_string());
        let name = given
            .clone()
            .or(fallback)
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| "imported design".into());
        let file = designs::from_import(&text, &name)?;
        let checked = designs::check(&file, &self.registry)?;
        let (pattern, _) = self
            .designs
            .save(
                session,
                None,
                given.as_deref(),
                file,
                &checked,
                None,
                None,
                "import",
            )
            .await?;
        Ok(pattern)
    }
}

impl PatternApi for Api {
    async fn list_patterns(
        &self,
        r: ListPatternsRequest<Session>,
    ) -> Result<ListPatternsResponse, ApiError> {
        let listing = listing_of!(r)?;
        let visibility = designs::visibility_filter(&r.visibility)?;
        let (patterns, total) = self.designs.list(&r.session, &visibility, &listing).await?;
        Ok(ListPatternsResponse::Ok(listing.page_of(patterns, total)))
    }

    async fn deploy_pattern(
        &self,
        r: DeployPatternRequest<Session>,
    ) -> Result<DeployPatternResponse, ApiError> {
        let (id, file) = design_of(&r.body);
        let options = deploy_options(false, r.dry_run, r.skip_crd, r.verify);
        Ok(DeployPatternResponse::Ok(
            self.deploy_design(&r.session, id, file, &r.contexts, options)
                .await?,
        ))
    }

    async fn undeploy_pattern(
        &self,
        r: UndeployPatternRequest<Session>,
    ) -> Result<UndeployPatternResponse, ApiError> {
        let (id, file) = design_of(&r.body);
        let options = deploy_options(true, r.dry_run, r.skip_crd, None);
        Ok(UndeployPatternResponse::Ok(
            self.deploy_design(&r.session, id, file, &r.contexts, options)
                .await?,
        ))
    }

    async fn save_pattern(
        &self,
        r: SavePatternRequest<Session>,
    ) -> Result<SavePatternResponse, ApiError> {
        let body = r.body;
        let session = &r.session;
        let given = [
            ("patternFile", body.pattern_file.is_some()),
            ("designFile", body.design_file.is_some()),
            ("patternData", !body.pattern_data.is_empty()),
            ("url", body.url.is_some()),
            ("K8sManifest", body.k8s_manifest.is_some()),
        ];
        let named: Vec<&str> = given.iter().filter(|(_, g)| *g).map(|(n, _)| *n).collect();
        if named.len() != 1 {
            return Err(ApiError::bad_request(format!(
                "give exactly one of patternFile, designFile, patternData, url and K8sManifest (got {})",
                if named.is_empty() {
                    "none".to_string()
                } else {
                    named.join(", ")
                }
            )));
        }
        let mut name = body.name.as_ref().map(|n| n.to_string());
        let mut catalog = Some(body.catalog_data.clone()).filter(|c| !c.is_empty());
        // (the design file, stored unless `save` says otherwise)
        let (text, stored_by_default) =
            if let Some(file) = body.pattern_file.as_ref().or(body.design_file.as_ref()) {
                (designs::file_text(file, named[0])?, true)
            } else if !body.pattern_data.is_empty() {
                // Meshery's legacy wrapper, in either spelling.
                let data = &body.pattern_data;
                let pick =
                    |a: &str, b: &str| data.get(a).or_else(|| data.get(b)).filter(|v| !v.is_null());
                let file = pick("patternFile", "pattern_file")
                    .ok_or_else(|| ApiError::bad_request("patternData holds no patternFile"))?;
                if name.is_none() {
                    name = pick("name", "name")
                        .and_then(|n| n.as_str())
                        .map(str::to_string);
                }
                if catalog.is_none() {
                    catalog = pick("catalogData", "catalog_data")
                        .and_then(|c| c.as_object())
                        .cloned();
                }
                (designs::file_text(file, "patternData.patternFile")?, false)
            } else if let Some(url) = &body.url {
                let path = body.path.as_ref().map(|p| p.as_str());
                let text = self.fetch_import(&designs::fetch_url(url, path)).await?;
                let stem = path
                    .unwrap_or(url.as_str())
                    .trim_end_matches('/')
                    .rsplit('/')
                    .next()
                    .map(|f| f.split(['.', '?']).next().unwrap_or(f).to_string());
                let fallback = name
                    .clone()
                    .or(stem)
                    .unwrap_or_else(|| "imported design".into());
                (designs::from_import(&text, &fallback)?, false)
            } else {
                let manifests = body.k8s_manifest.as_deref().unwrap_or_default();
                let fallback = name.clone().unwrap_or_else(|| "converted manifests".into());
                (designs::from_import(manifests, &fallback)?, false)
            };
        let checked: Checked = designs::check(&text, &self.registry)?;
        if !body.save.unwrap_or(stored_by_default) {
            return Ok(SavePatternResponse::Ok(vec![designs::Designs::unsaved(
                session,
                name.as_deref(),
                text,
                &checked,
                catalog,
            )]));
        }
        let (pattern, created) = self
            .designs
            .save(
                session,
                body.id.as_deref(),
                name.as_deref(),
                text,
                &checked,
                body.visibility,
                catalog,
                "save",
            )
            .await?;
        Ok(if created {
            SavePatternResponse::Created(vec![pattern])
        } else {
            SavePatternResponse::Ok(vec![pattern])
        })
    }

    async fn import_pattern(
        &self,
        r: ImportPatternRequest<Session>,
    ) -> Result<ImportPatternResponse, ApiError> {
        Ok(ImportPatternResponse::Ok(vec![
            self.import(&r.session, r.body).await?,
        ]))
    }

    async fn download_pattern(
        &self,
        r: DownloadPatternRequest<Session>,
    ) -> Result<DownloadPatternResponse, ApiError> {
        // Meshery: a valid `export` wins over `oci`.
        let wanted = match (r.export.as_deref(), r.format.as_deref()) {
            (Some(export), _) if is_helm_chart(export) => Download::HelmChart,
            (Some(export), _) => Download::Yaml(source_type(export).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "export {export:?} is not offered here; use Design, Kubernetes Manifest or helm-chart"
                ))
            })?),
            (None, _) if r.oci == Some(true) => Download::Oci,
            (None, Some("manifest")) => Download::Yaml(Source::Manifests),
            (None, _) => Download::Yaml(Source::Design),
        };
        let pattern = self.designs.readable(&r.session, &r.pattern_id).await?;
        let (file, content_type, bytes) = match wanted {
            Download::Yaml(format) => {
                let name = format!("{}.yml", file_stem(&pattern.name));
                (
                    name,
                    "application/yaml",
                    self.design_as(pattern, format)?.into_bytes(),
                )
            }
            Download::HelmChart | Download::Oci => {
                // The image holds the design file alone: only a chart needs the manifests.
                let manifests = if matches!(wanted, Download::HelmChart) {
                    let checked = designs::check(&pattern.pattern_file, &self.registry)?;
                    designs::to_manifests(&checked)?
                } else {
                    String::new()
                };
                let version = design_version(&pattern.pattern_file);
                let updated_at = pattern
                    .updated_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                let design = crate::design_export::Design {
                    name: &pattern.name,
                    version: version.as_deref(),
                    file: &pattern.pattern_file,
                    manifests: &manifests,
                    updated_at: &updated_at,
                };
                let (export, content_type) = if matches!(wanted, Download::HelmChart) {
                    (
                        crate::design_export::helm_chart(&design),
                        "application/x-gzip",
                    )
                } else {
                    (crate::design_export::oci_image(&design), "application/tar")
                };
                let export =
                    export.map_err(|e| ApiError::internal("writing the design's export", e))?;
                (export.file_name, content_type, export.bytes)
            }
        };
        Ok(DownloadPatternResponse::Ok {
            body: rt::File {
                content_type,
                bytes,
            },
            content_disposition: Some(disposition(&file)),
        })
    }

    async fn download_pattern_source(
        &self,
        r: DownloadPatternSourceRequest<Session>,
    ) -> Result<DownloadPatternSourceResponse, ApiError> {
        let pattern = self.designs.readable(&r.session, &r.pattern_id).await?;
        let format = source_type(&r.source_type).ok_or_else(|| {
            ApiError::not_found(format!(
                "design {} has no {:?} source: designs here are stored as design files (Design, Kubernetes Manifest)",
                pattern.id, r.source_type
            ))
        })?;
        Ok(DownloadPatternSourceResponse::Ok(
            self.design_as(pattern, format)?,
        ))
    }

    async fn list_pattern_source_types(
        &self,
        _: ListPatternSourceTypesRequest<Session>,
    ) -> Result<ListPatternSourceTypesResponse, ApiError> {
        let extensions = vec![".yaml".to_string(), ".yml".into(), ".json".into()];
        Ok(ListPatternSourceTypesResponse::Ok(
            ["Design", "Kubernetes Manifest"]
                .into_iter()
                .map(|t| crate::models::PatternSourceType {
                    design_type: t.into(),
                    supported_extensions: extensions.clone(),
                })
                .collect(),
        ))
    }

    async fn clone_pattern(
        &self,
        r: ClonePatternRequest<Session>,
    ) -> Result<ClonePatternResponse, ApiError> {
        let source = self.designs.readable(&r.session, &r.pattern_id).await?;
        let checked = designs::check(&source.pattern_file, &self.registry)?;
        let name = format!("{} (copy)", source.name);
        let (pattern, _) = self
            .designs
            .save(
                &r.session,
                None,
                Some(&name),
                source.pattern_file,
                &checked,
                None,
                Some(source.catalog_data),
                "clone",
            )
            .await?;
        Ok(ClonePatternResponse::Created(pattern))
    }

    async fn get_pattern(
        &self,
        r: GetPatternRequest<Session>,
    ) -> Result<GetPatternResponse, ApiError> {
        Ok(GetPatternResponse::Ok(
            self.designs.readable(&r.session, &r.pattern_id).await?,
        ))
    }

    async fn delete_pattern(
        &self,
        r: DeletePatternRequest<Session>,
    ) -> Result<DeletePatternResponse, ApiError> {
        let deleted = self
            .designs
            .delete(&r.session, std::slice::from_ref(&r.pattern_id))
            .await?;
        if deleted == 0 {
            return Err(ApiError::not_found(format!(
                "no design {:?} of yours",
                r.pattern_id
            )));
        }
        Ok(DeletePatternResponse::NoContent)
    }

    async fn delete_patterns(
        &self,
        r: DeletePatternsRequest<Session>,
    ) -> Result<DeletePatternsResponse, ApiError> {
        let ids: Vec<String> = r.body.patterns.iter().map(|p| p.id.clone()).collect();
        let n = self.designs.delete(&r.session, &ids).await?;
        Ok(DeletePatternsResponse::Ok(EventsChanged {
            changed: i64::try_from(n).unwrap_or(i64::MAX),
        }))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_download_names_its_file_for_every_client() {
        assert_eq!(
            super::disposition("shop.yml"),
            "attachment; filename=\"shop.yml\""
        );
        assert_eq!(
            super::disposition("café.yml"),
            "attachment; filename=\"caf_.yml\"; filename*=UTF-8''caf%C3%A9.yml"
        );
        assert_eq!(super::file_stem("a/b:c\"d"), "abcd");
    }
}
