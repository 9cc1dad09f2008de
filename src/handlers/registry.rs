use crate::error::ApiError;
use crate::generated::rest::*;
use crate::models::{
    RegistryCategory, RegistryComponent, RegistryModel, RegistryRegistrant, RegistryRelationship,
};
use crate::server::Api;
use crate::session::Session;

/// What the registry's listings need to know of an item: its text for `search` and the
/// value of each field `sort` may name.
trait Listed {
    fn text(&self) -> String;
    fn field(&self, field: &str) -> Option<String>;
}

impl Listed for RegistryModel {
    fn text(&self) -> String {
        format!("{} {}", self.name, self.display_name)
    }
    fn field(&self, field: &str) -> Option<String> {
        Some(match field {
            "name" => self.name.clone(),
            "displayname" | "display_name" => self.display_name.clone(),
            "version" => self.version.clone(),
            "category" => self.category.name.clone(),
            "registrant" => self.registrant.name.clone(),
            _ => return None,
        })
    }
}

impl Listed for RegistryComponent {
    fn text(&self) -> String {
        format!("{} {}", self.kind, self.display_name)
    }
    fn field(&self, field: &str) -> Option<String> {
        Some(match field {
            "name" | "kind" => self.kind.clone(),
            "displayname" | "display_name" => self.display_name.clone(),
            "version" | "apiversion" => self.api_version.clone(),
            "model" => self.model.name.clone(),
            _ => return None,
        })
    }
}

impl Listed for RegistryRelationship {
    fn text(&self) -> String {
        format!(
            "{} {} {}",
            self.from.join(" "),
            self.to.join(" "),
            self.sub_type
        )
    }
    fn field(&self, field: &str) -> Option<String> {
        Some(match field {
            "name" | "id" => self.id.clone(),
            "kind" => self.kind.to_string(),
            "type" => self.type_.clone(),
            "subtype" => self.sub_type.clone(),
            "model" => self.model.name.clone(),
            _ => return None,
        })
    }
}

impl Listed for RegistryCategory {
    fn text(&self) -> String {
        self.name.clone()
    }
    fn field(&self, field: &str) -> Option<String> {
        match field {
            "name" => Some(self.name.clone()),
            "count" => Some(format!("{:020}", self.models_count)),
            _ => None,
        }
    }
}

impl Listed for RegistryRegistrant {
    fn text(&self) -> String {
        self.name.clone()
    }
    fn field(&self, field: &str) -> Option<String> {
        match field {
            "name" => Some(self.name.clone()),
            "count" => Some(format!("{:020}", self.models_count)),
            _ => None,
        }
    }
}

/// The shared listing parameters of the registry (search ignores case; `sort` + `order`).
struct Params<'a> {
    page: Option<i64>,
    page_size: Option<&'a str>,
    search: Option<&'a str>,
    sort: Option<&'a str>,
    descending: bool,
}

macro_rules! params_of {
    ($r:expr) => {
        Params {
            page: $r.page,
            page_size: $r.pagesize.as_deref().or($r.page_size.as_deref()),
            search: $r.search.as_deref(),
            sort: $r.sort.as_deref(),
            descending: $r.order.as_deref() == Some("desc"),
        }
    };
}

fn page<T: Listed, P: Page<Item = T>>(mut items: Vec<T>, p: Params<'_>) -> Result<P, ApiError> {
    let listing = crate::store::listing(p.page, p.page_size, None, None, None, None)?;
    if let Some(search) = p.search.map(str::trim).filter(|s| !s.is_empty()) {
        let needle = search.to_lowercase();
        items.retain(|i| i.text().to_lowercase().contains(&needle));
    }
    let field = p.sort.map(|s| {
        s.trim_matches(|c| c == ' ' || c == '\t')
            .to_ascii_lowercase()
    });
    let field = field.as_deref().filter(|f| !f.is_empty()).unwrap_or("name");
    if items.first().is_some_and(|i| i.field(field).is_none()) {
        return Err(ApiError::bad_request(format!("cannot sort by {field:?}")));
    }
    // Stable: items equal in the field keep the registry's order (name, then version).
    items.sort_by_cached_key(|i| i.field(field).unwrap_or_default());
    if p.descending {
        items.reverse();
    }
    let total = i64::try_from(items.len()).unwrap_or(i64::MAX);
    let items = match listing.page_size {
        Some(size) => {
            let skip = usize::try_from(listing.page.saturating_mul(size)).unwrap_or(usize::MAX);
            items
                .into_iter()
                .skip(skip)
                .take(usize::try_from(size).unwrap_or(0))
                .collect()
        }
        None => items,
    };
    Ok(listing.page_of(items, total))
}

fn trim(components: &mut [RegistryComponent], trim: Option<bool>) {
    if trim.unwrap_or(false) {
        for c in components {
            c.schema.clear();
            c.component.schema.clear();
        }
    }
}

/// Whether an optional filter (empty: none) matches, any case.
fn matches_filter(filter: Option<&str>, value: &str) -> bool {
    filter
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .is_none_or(|f| f.eq_ignore_ascii_case(value))
}

impl RegistryApi for Api {
    async fn list_models(
        &self,
        r: ListModelsRequest<Session>,
    ) -> Result<ListModelsResponse, ApiError> {
        let mut models = self.registry.models(
            r.version.as_deref(),
            r.category.as_deref(),
            r.registrant.as_deref(),
        );
        if let Some(id) = r.id.as_deref() {
            models.retain(|m| m.id == id);
        }
        for m in &mut models {
            trim(&mut m.components, r.trim);
        }
        Ok(ListModelsResponse::Ok(page(models, params_of!(r))?))
    }

    async fn get_model(&self, r: GetModelRequest<Session>) -> Result<GetModelResponse, ApiError> {
        // Every version of the model (Meshery's answer is a listing), or the one asked
        // for; a model (or version) that is not there is a 404.
        self.registry.model(&r.model, r.version.as_deref())?;
        let mut models = self.registry.models(r.version.as_deref(), None, None);
        models.retain(|m| m.name == r.model);
        for m in &mut models {
            trim(&mut m.components, r.trim);
        }
        let params = Params {
            page: r.page,
            page_size: r.pagesize.as_deref().or(r.page_size.as_deref()),
            search: None,
            // The registry's order: by version, numerically.
            sort: None,
            descending: false,
        };
        Ok(GetModelResponse::Ok(page(models, params)?))
    }

    async fn list_model_components_of_kind(
        &self,
        r: ListModelComponentsOfKindRequest<Session>,
    ) -> Result<ListModelComponentsOfKindResponse, ApiError> {
        let mut m = self.registry.model(&r.model, r.version.as_deref())?;
        m.components
            .retain(|c| c.kind.eq_ignore_ascii_case(&r.kind));
        trim(&mut m.components, r.trim);
        let params = Params {
            page: r.page,
            page_size: r.pagesize.as_deref().or(r.page_size.as_deref()),
            search: None,
            sort: None,
            descending: false,
        };
        Ok(ListModelComponentsOfKindResponse::Ok(page(
            m.components,
            params,
        )?))
    }

    async fn list_category_models(
        &self,
        r: ListCategoryModelsRequest<Session>,
    ) -> Result<ListCategoryModelsResponse, ApiError> {
        let mut models = self.registry.models(None, Some(&r.category), None);
        for m in &mut models {
            trim(&mut m.components, r.trim);
        }
        let params = Params {
            page: r.page,
            page_size: r.pagesize.as_deref().or(r.page_size.as_deref()),
            search: r.search.as_deref(),
            sort: None,
            descending: false,
        };
        Ok(ListCategoryModelsResponse::Ok(page(models, params)?))
    }

    async fn list_model_components(
        &self,
        r: ListModelComponentsRequest<Session>,
    ) -> Result<ListModelComponentsResponse, ApiError> {
        let mut m = self.registry.model(&r.model, r.version.as_deref())?;
        trim(&mut m.components, r.trim);
        Ok(ListModelComponentsResponse::Ok(page(
            m.components,
            params_of!(r),
        )?))
    }

    async fn list_model_relationships(
        &self,
        r: ListModelRelationshipsRequest<Session>,
    ) -> Result<ListModelRelationshipsResponse, ApiError> {
        let m = self.registry.model(&r.model, r.version.as_deref())?;
        Ok(ListModelRelationshipsResponse::Ok(page(
            m.relationships,
            params_of!(r),
        )?))
    }

    async fn list_categories(
        &self,
        r: ListCategoriesRequest<Session>,
    ) -> Result<ListCategoriesResponse, ApiError> {
        Ok(ListCategoriesResponse::Ok(page(
            self.registry.categories(),
            params_of!(r),
        )?))
    }

    async fn list_components(
        &self,
        r: ListComponentsRequest<Session>,
    ) -> Result<ListComponentsResponse, ApiError> {
        let mut components = self.registry.components();
        if let Some(v) = r.api_version.as_deref() {
            components.retain(|c| c.api_version == v);
        }
        trim(&mut components, r.trim);
        Ok(ListComponentsResponse::Ok(page(components, params_of!(r))?))
    }

    async fn list_components_by_kind(
        &self,
        r: ListComponentsByKindRequest<Session>,
    ) -> Result<ListComponentsByKindResponse, ApiError> {
        let mut components = self.registry.components();
        components.retain(|c| {
            c.kind.eq_ignore_ascii_case(&r.name)
                && r.api_version.as_deref().is_none_or(|v| c.api_version == v)
        });
        trim(&mut components, r.trim);
        Ok(ListComponentsByKindResponse::Ok(page(
            components,
            params_of!(r),
        )?))
    }

    async fn list_relationships(
        &self,
        r: ListRelationshipsRequest<Session>,
    ) -> Result<ListRelationshipsResponse, ApiError> {
        let mut relationships = self.registry.relationships();
        relationships.retain(|x| {
            matches_filter(r.kind.as_deref(), &x.kind.to_string())
                && matches_filter(r.r#type.as_deref(), &x.type_)
                && matches_filter(r.sub_type.as_deref(), &x.sub_type)
        });
        Ok(ListRelationshipsResponse::Ok(page(
            relationships,
            params_of!(r),
        )?))
    }

    async fn list_registrants(
        &self,
        r: ListRegistrantsRequest<Session>,
    ) -> Result<ListRegistrantsResponse, ApiError> {
        Ok(ListRegistrantsResponse::Ok(page(
            self.registry.registrants(),
            params_of!(r),
        )?))
    }

    async fn register_model(
        &self,
        r: RegisterModelRequest<Session>,
    ) -> Result<RegisterModelResponse, ApiError> {
        // The catalogue is every user's: only an administrator may add to it.
        ApiError::unless_admin(
            &r.session,
            "register models",
            "The registry is shared by every user, so registering changes it for all of them.",
        )?;
        match r.body {
            crate::models::RegisterModelInput::Definition(definition) => {
                let model = self.register_one(&r.session, definition).await?;
                Ok(RegisterModelResponse::Created(model.into()))
            }
            crate::models::RegisterModelInput::ImportRequest(request) => Ok(
                RegisterModelResponse::Ok(self.import_models(&r.session, request).await?.into()),
            ),
        }
    }

    async fn delete_model(
        &self,
        r: DeleteModelRequest<Session>,
    ) -> Result<DeleteModelResponse, ApiError> {
        ApiError::unless_admin(
            &r.session,
            "delete models",
            "The registry is shared by every user, so deleting changes it for all of them.",
        )?;
        let model = self.registry.delete(&r.model).await?;
        let event = crate::events::NewEvent::new(
            "registry",
            "delete",
            crate::models::EventSeverity::Informational,
            format!("Model {} deleted", model.id),
        )
        .acted_upon(model.id.clone());
        self.events.note(&r.session, event).await;
        Ok(DeleteModelResponse::Ok(model))
    }

    async fn evaluate_relationships(
        &self,
        r: EvaluateRelationshipsRequest<Session>,
    ) -> Result<EvaluateRelationshipsResponse, ApiError> {
        let diff_only = r
            .body
            .options
            .as_ref()
            .and_then(|o| o.return_diff_only)
            .unwrap_or(false);
        let design = serde_json::to_value(&r.body.design)
            .map_err(|e| ApiError::internal("reading a design", e))?;
        let evaluated = crate::designs::evaluate(&design, &self.registry, diff_only)?;
        Ok(EvaluateRelationshipsResponse::Ok(
            serde_json::from_value(evaluated)
                .map_err(|e| ApiError::internal("encoding an evaluation", e))?,
        ))
    }

    async fn export_model(
        &self,
        r: ExportModelRequest<Session>,
    ) -> Result<ExportModelResponse, ApiError> {
        let model = match (r.id.as_deref(), r.name.as_deref()) {
            (Some(id), _) => {
                let (name, version) = id.split_once('@').unwrap_or((id, ""));
                self.registry
                    .model(name, Some(version).filter(|v| !v.is_empty()))?
            }
            (None, Some(name)) => self.registry.model(name, r.version.as_deref())?,
            (None, None) => return Err(ApiError::bad_request("name the model: id or name")),
        };
        let how = archive::Export {
            format: if r
                .output_format
                .as_deref()
                .is_some_and(|f| f.eq_ignore_ascii_case("yaml"))
            {
                archive::Format::Yaml
            } else {
                archive::Format::Json
            },
            components: r.components.unwrap_or(true),
            relationships: r.relationships.unwrap_or(true),
        };
        let tar_gz = matches!(
            r.file_type.map(|t| t.to_string()).as_deref(),
            Some("tar" | "tgz" | "tar.gz")
        );
        let bytes = if tar_gz {
            archive::tar_gz(std::slice::from_ref(&model), &how)
        } else {
            archive::oci(std::slice::from_ref(&model), &how)
        }
        .map_err(|e| ApiError::internal("writing a model archive", e))?;
        Ok(ExportModelResponse::Ok(bytes))
    }
}

use crate::registry::{archive, sheet};

impl Api {
    /// Registers one model definition, with its event.
    async fn register_one(
        &self,
        session: &Session,
        definition: crate::models::ModelDefinition,
    ) -> Result<RegistryModel, crate::registry::RegistryError> {
        let registrant = session.user.user_name.clone();
        let model = self.registry.register(definition, &registrant).await?;
        let event = crate::events::NewEvent::new(
            "registry",
            "register",
            crate::models::EventSeverity::Success,
            format!("Model {} registered", model.id),
        )
        .acted_upon(model.id.clone());
        self.events.note(session, event).await;
        Ok(model)
    }

    /// Meshery's import request: the models of an archive (sent, or at a URL), registered
    /// (or only checked), each success and failure in Meshery's summary.
    async fn import_models(
        &self,
        session: &Session,
        request: crate::models::ModelImportRequest,
    ) -> Result<crate::models::ModelImportSummary, ApiError> {
        use crate::models::ModelImportRequestUploadType as Upload;
        let body = &request.import_body;
        let (definitions, rejected) = match request.upload_type {
            Upload::File => {
                let file = body
                    .model_file
                    .as_ref()
                    .filter(|f| !f.is_null())
                    .ok_or_else(|| {
                        ApiError::bad_request("importBody.modelFile (the model archive) is missing")
                    })?;
                archive_definitions(&file_bytes(file)?)?
            }
            Upload::UrlImport | Upload::Url => {
                let url = body
                    .url
                    .as_deref()
                    .filter(|u| !u.trim().is_empty())
                    .ok_or_else(|| {
                        ApiError::bad_request(
                            "importBody.url (where the model archive is) is missing",
                        )
                    })?;
                archive_definitions(&self.fetch_bytes(url).await?)?
            }
            Upload::Csv => {
                let sheet = |what: &str, sent: &Option<String>| {
                    sent.as_deref()
                        .filter(|s| !s.trim().is_empty())
                        .map(|s| sheet::decode(what, s))
                        .transpose()
                        .map_err(ApiError::bad_request)
                };
                let models = sheet("model", &body.model_csv)?.ok_or_else(|| {
                    ApiError::bad_request("importBody.model_csv (the model spreadsheet) is missing")
                })?;
                let components = sheet("component", &body.component_csv)?;
                let relationships = sheet("relationship", &body.relationship_csv)?;
                sheet::definitions(&models, components.as_deref(), relationships.as_deref())
                    .map_err(ApiError::bad_request)?
            }
        };
        let register = request.register.unwrap_or(true);
        let mut summary = ImportSummary::default();
        for r in rejected {
            summary.failed(&r.name, r.entity, &r.error);
        }
        for definition in definitions {
            let name = definition.name.to_string();
            let outcome = if register {
                self.register_one(session, definition).await
            } else {
                self.registry.validate(definition)
            };
            match outcome {
                Ok(model) => summary.registered(&model),
                Err(crate::registry::RegistryError::Internal(i)) => return Err(i.into()),
                Err(e) => summary.failed(&name, "model", &e.to_string()),
            }
        }
        Ok(summary.into_model())
    }
}

fn archive_definitions(
    bytes: &[u8],
) -> Result<(Vec<crate::models::ModelDefinition>, Vec<archive::Rejected>), ApiError> {
    archive::definitions(bytes)
        .map_err(|e| ApiError::bad_request(format!("the model archive: {e}")))
}

/// A file sent as base64 text or as its bytes (a list of numbers).
fn file_bytes(value: &serde_json::Value) -> Result<Vec<u8>, ApiError> {
    match value {
        serde_json::Value::String(text) => base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            text.trim().replace(['\n', '\r'], ""),
        )
        .map_err(|e| ApiError::bad_request(format!("importBody.modelFile is not base64: {e}"))),
        serde_json::Value::Array(items) => items
            .iter()
            .map(|v| v.as_u64().and_then(|n| u8::try_from(n).ok()))
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(|| {
                ApiError::bad_request("importBody.modelFile: a list of bytes holds numbers 0-255")
            }),
        _ => Err(ApiError::bad_request(
            "importBody.modelFile must be base64 text or a list of bytes",
        )),
    }
}

/// Meshery's import summary, as it is filled.
#[derive(Default)]
struct ImportSummary {
    models: Vec<crate::models::ModelImportSummaryEntityTypeSummarySuccessfulModelsItem>,
    components: Vec<crate::models::ModelImportSummaryEntityTypeSummarySuccessfulComponentsItem>,
    relationships:
        Vec<crate::models::ModelImportSummaryEntityTypeSummarySuccessfulRelationshipsItem>,
    failures:
        Vec<crate::models::ModelImportSummaryEntityTypeSummaryUnsuccessfulEntityNameWithErrorItem>,
}

impl ImportSummary {
    fn registered(&mut self, m: &RegistryModel) {
        self.models.push(
            crate::models::ModelImportSummaryEntityTypeSummarySuccessfulModelsItem {
                name: m.name.clone(),
                display_name: m.display_name.clone(),
                version: m.version.clone(),
            },
        );
        for c in &m.components {
            self.components.push(
                crate::models::ModelImportSummaryEntityTypeSummarySuccessfulComponentsItem {
                    display_name: c.display_name.clone(),
                    model: m.name.clone(),
                    version: m.version.clone(),
                },
            );
        }
        for r in &m.relationships {
            self.relationships.push(
                crate::models::ModelImportSummaryEntityTypeSummarySuccessfulRelationshipsItem {
                    kind: r.kind.to_string(),
                    sub_type: r.sub_type.clone(),
                    relationship_type: r.type_.clone(),
                    model: m.name.clone(),
                },
            );
        }
    }

    fn failed(&mut self, name: &str, entity: &str, error: &str) {
        self.failures.push(
            crate::models::ModelImportSummaryEntityTypeSummaryUnsuccessfulEntityNameWithErrorItem {
                name: name.to_string(),
                entity_type: entity.to_string(),
                error: error.to_string(),
            },
        );
    }

    fn into_model(self) -> crate::models::ModelImportSummary {
        let errors: Vec<String> = self
            .failures
            .iter()
            .map(|f| format!("{} {}: {}", f.entity_type, f.name, f.error))
            .collect();
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        crate::models::ModelImportSummary {
            entity_count: crate::models::ModelImportSummaryEntityCount {
                model_count: count(self.models.len()),
                comp_count: count(self.components.len()),
                rel_count: count(self.relationships.len()),
                total_err_count: count(self.failures.len()),
            },
            err_msg: errors.join("; "),
            model_name: self.models.iter().map(|m| m.name.clone()).collect(),
            entity_type_summary: crate::models::ModelImportSummaryEntityTypeSummary {
                successful_models: self.models,
                successful_components: self.components,
                successful_relationships: self.relationships,
                unsuccessful_entity_name_with_error: self.failures,
            },
        }
    }
}
