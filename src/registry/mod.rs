//! The registry: models (component kinds with JSON schemas, and relationships), the
//! built-in catalogue loaded at start plus the models users register (stored). Shared by
//! every user; design validation looks kinds up here.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::RwLock;

use serde_json::{Value, json};

pub mod archive;
pub mod sheet;

use crate::bus::{Bus, Topic};
use crate::fault::{Internal, OrInternal};
use crate::models::{
    ModelDefinition, RegistryCategory, RegistryCategoryRef, RegistryComponent,
    RegistryComponentKind, RegistryComponentMetadata, RegistryModel, RegistryModelMetadata,
    RegistryModelPackage, RegistryModelRef, RegistryModelReference,
    RegistryModelReferenceRegistrant, RegistryRegistrant, RegistryRegistrantRef,
    RegistryRelationship, RegistryRelationshipKind, RegistryRelationshipMetadata,
    RegistryRelationshipSelectorsItem, RegistryRelationshipSelectorsItemAllow,
    RegistrySelectorItem, RegistrySelectorItemModel, RegistryStyles,
};
use crate::store::Store;

const CATALOGUE: &str = include_str!("catalogue.yaml");

/// A registered model with its compiled component validators.
struct Entry {
    model: RegistryModel,
    /// (apiVersion, kind) -> validator of the component's schema.
    validators: HashMap<(String, String), Arc<jsonschema::Validator>>,
}

pub struct Registry {
    store: Store,
    bus: Bus,
    /// Sorted by name, then version (newest last).
    entries: RwLock<Vec<Arc<Entry>>>,
    /// Shared schema pieces of the built-in catalogue, put into each builtin schema.
    defs: Value,
}

/// One problem a component has against the registry.
#[derive(Debug, Clone)]
pub struct Finding {
    /// Where in the resource (a JSON pointer), or empty for the kind itself.
    pub path: String,
    pub message: String,
}

/// Why a registry operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A model definition breaks the rules.
    #[error("{0}")]
    Invalid(String),
    #[error("model {0} is already registered")]
    Exists(String),
    #[error("model {0} is built into the server and cannot be deleted")]
    BuiltIn(String),
    #[error(
        "model {id} cannot be deleted: the relationships of {dependents} name its kinds; delete those first"
    )]
    InUse { id: String, dependents: String },
    #[error("no model {name:?}{}", .version.as_ref().map(|v| format!(" at version {v:?}")).unwrap_or_default())]
    NoModel {
        name: String,
        version: Option<String>,
    },
    #[error(transparent)]
    Internal(#[from] Internal),
}

fn bad(message: impl Into<String>) -> RegistryError {
    RegistryError::Invalid(message.into())
}

/// Orders versions numerically where they are numbers (`v1.10` after `v1.9`).
fn version_key(v: &str) -> Vec<(u64, String)> {
    v.trim_start_matches('v')
        .split(['.', '-', '+'])
        .map(|p| (p.parse::<u64>().unwrap_or(u64::MAX), p.to_string()))
        .collect()
}

fn int(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A stable UUID for a name of some kind (Meshery's categories and registrants have ids;
/// here they follow from their names).
fn uuid_of(kind: &str, name: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, format!("{kind}:{name}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest.as_ref()[..16]);
    uuid::Uuid::new_v8(bytes).to_string()
}

/// Meshery's brand colours; no icons are kept here, so the SVGs are empty.
const PRIMARY: &str = "#00B39F";
const SECONDARY: &str = "#00D3A9";

fn category_ref(name: &str) -> RegistryCategoryRef {
    RegistryCategoryRef {
        id: uuid_of("category", name),
        name: name.to_string(),
        metadata: Default::default(),
    }
}

fn registrant_ref(name: &str, built_in: bool) -> RegistryRegistrantRef {
    RegistryRegistrantRef {
        id: uuid_of("registrant", name),
        name: name.to_string(),
        kind: if built_in {
            "meshery".into()
        } else {
            name.to_string()
        },
        type_: "registry".into(),
        sub_type: String::new(),
        status: "registered".into(),
        schema_version: "connections.meshery.io/v1beta1".into(),
        metadata: Default::default(),
    }
}

fn model_metadata() -> RegistryModelMetadata {
    RegistryModelMetadata {
        is_annotation: false,
        primary_color: PRIMARY.into(),
        secondary_color: SECONDARY.into(),
        svg_white: String::new(),
        svg_color: String::new(),
        svg_complete: String::new(),
        shape: String::new(),
    }
}

/// The model a component or relationship belongs to, without its components.
fn model_ref(m: &RegistryModel) -> RegistryModelRef {
    RegistryModelRef {
        id: m.id.clone(),
        schema_version: m.schema_version.clone(),
        name: m.name.clone(),
        display_name: m.display_name.clone(),
        version: m.version.clone(),
        status: m.status.to_string(),
        category: m.category.clone(),
        registrant: m.registrant.clone(),
        model: m.model.clone(),
        metadata: m.metadata.clone(),
    }
}

/// A kind the registry has no schema for (at that apiVersion).
#[derive(Debug, thiserror::Error)]
#[error(
    "kind {kind} is not registered{}",
    registered_note(api_version, registered)
)]
pub struct Unregistered {
    pub kind: String,
    pub api_version: String,
    /// The apiVersions that kind is registered for.
    pub registered: Vec<String>,
}

fn registered_note(api_version: &str, registered: &[String]) -> String {
    if registered.is_empty() {
        String::new()
    } else {
        format!(
            " for apiVersion {api_version} (registered: {})",
            registered.join(", ")
        )
    }
}

/// Why the registry could not be loaded at start.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("built-in catalogue: {0}")]
    Builtin(String),
    #[error("stored model: {0}")]
    Stored(String),
    #[error("stored models: {0}")]
    Store(#[from] crate::store::StoreError),
}

impl Registry {
    /// Loads the built-in catalogue and the stored registrations.
    pub async fn load(store: Store, bus: Bus) -> Result<Registry, LoadError> {
        let catalogue: Value =
            yaml_serde::from_str(CATALOGUE).map_err(|e| LoadError::Builtin(e.to_string()))?;
        let defs = catalogue["defs"].clone();
        let registry = Registry {
            store,
            bus,
            entries: RwLock::new(Vec::new()),
            defs,
        };
        let builtin: Vec<ModelDefinition> = catalogue["models"]
            .as_array()
            .ok_or_else(|| LoadError::Builtin("no models".into()))?
            .iter()
            .map(|m| serde_json::from_value(m.clone()))
            .collect::<Result<_, _>>()
            .map_err(|e| LoadError::Builtin(e.to_string()))?;
        let mut entries = Vec::new();
        for definition in builtin {
            let entry = registry
                .build(definition, true, &entries)
                .map_err(|e| LoadError::Builtin(e.to_string()))?;
            entries.push(Arc::new(entry));
        }
        sort(&mut entries);
        *registry.entries.write() = entries;
        registry.sync().await?;
        Ok(registry)
    }

    /// Loads the stored registrations this server does not have yet (at start, and when
    /// another replica registered one), oldest first: a model's relationships may name
    /// the kinds of one registered before it.
    pub async fn sync(&self) -> Result<usize, LoadError> {
        let stored = self.store.registered_models().await?;
        // Registrations another replica deleted go here too.
        let ids: std::collections::HashSet<String> = stored
            .iter()
            .filter_map(|doc| serde_json::from_str::<ModelDefinition>(doc).ok())
            .map(|d| format!("{}@{}", d.name.as_str(), d.version.as_str()))
            .collect();
        self.entries
            .write()
            .retain(|e| e.model.built_in || ids.contains(&e.model.id));
        let mut added = 0;
        for doc in stored {
            let definition: ModelDefinition =
                serde_json::from_str(&doc).map_err(|e| LoadError::Stored(e.to_string()))?;
            let known = self.snapshot();
            let id = format!(
                "{}@{}",
                definition.name.as_str(),
                definition.version.as_str()
            );
            if known.iter().any(|e| e.model.id == id) {
                continue;
            }
            let entry = self
                .build(definition, false, &known)
                .map_err(|e| LoadError::Stored(e.to_string()))?;
            let mut entries = self.entries.write();
            // Another sync may have added it meanwhile.
            if entries.iter().any(|e| e.model.id == entry.model.id) {
                continue;
            }
            entries.push(Arc::new(entry));
            sort(&mut entries);
            added += 1;
        }
        Ok(added)
    }

    /// Loads what other replicas register, as they announce it.
    pub fn follow(self: &Arc<Self>) {
        let registry = Arc::downgrade(self);
        self.bus.on(Topic::Registry, move |_| {
            let registry = registry.clone();
            async move {
                if let Some(registry) = registry.upgrade()
                    && let Err(e) = registry.sync().await
                {
                    tracing::warn!(error = %e, "loading another replica's registration");
                }
            }
        });
    }

    /// Checks a definition and compiles its schemas. `known` are the models already
    /// registered (relationships may name their kinds).
    fn build(
        &self,
        d: ModelDefinition,
        built_in: bool,
        known: &[Arc<Entry>],
    ) -> Result<Entry, RegistryError> {
        let name = d.name.to_string();
        let version = d.version.to_string();
        let id = format!("{name}@{version}");
        let mut validators = HashMap::new();
        let mut components = Vec::new();
        for c in &d.components {
            let (kind, api_version) = (c.kind.to_string(), c.api_version.to_string());
            if validators.contains_key(&(api_version.clone(), kind.clone())) {
                return Err(bad(format!(
                    "{id}: component {api_version}/{kind} is listed twice"
                )));
            }
            let mut schema = if c.schema.is_empty() {
                json!({"type": "object"})
            } else {
                Value::Object(c.schema.clone())
            };
            if built_in && let Value::Object(m) = &mut schema {
                m.insert("$defs".into(), self.defs.clone());
            }
            let validator = jsonschema::validator_for(&schema).map_err(|e| {
                bad(format!(
                    "{id}: the schema of {api_version}/{kind} is not a valid JSON Schema: {e}"
                ))
            })?;
            validators.insert((api_version.clone(), kind.clone()), Arc::new(validator));
            let Value::Object(schema) = schema else {
                return Err(bad(format!("{id}: the schema of {kind} must be an object")));
            };
            let namespaced = c.namespaced.unwrap_or(true);
            let display_name = c
                .display_name
                .as_ref()
                .map(|s| s.to_string())
                .unwrap_or_else(|| kind.clone());
            components.push(RegistryComponent {
                id: format!("{id}/{api_version}/{kind}"),
                schema_version: "components.meshery.io/v1beta1".into(),
                version: "v1.0.0".into(),
                description: format!("{display_name} ({api_version}) of {name} {version}"),
                display_name,
                format: crate::models::RegistryComponentFormat::Json,
                // Filled in below, once the model is whole.
                model: placeholder_ref(),
                model_id: id.clone(),
                model_reference: RegistryModelReference {
                    id: id.clone(),
                    name: name.clone(),
                    version: version.clone(),
                    display_name: String::new(),
                    model: RegistryModelPackage {
                        version: version.clone(),
                    },
                    registrant: RegistryModelReferenceRegistrant {
                        kind: String::new(),
                    },
                },
                styles: RegistryStyles {
                    primary_color: PRIMARY.into(),
                    secondary_color: SECONDARY.into(),
                    svg_white: String::new(),
                    svg_color: String::new(),
                    svg_complete: String::new(),
                    shape: "round-rectangle".into(),
                },
                capabilities: Vec::new(),
                status: crate::models::RegistryComponentStatus::Enabled,
                metadata: RegistryComponentMetadata {
                    genealogy: String::new(),
                    is_annotation: false,
                    is_namespaced: namespaced,
                    published: false,
                    configuration_ui_schema: String::new(),
                },
                configuration: Default::default(),
                component: RegistryComponentKind {
                    kind: kind.clone(),
                    version: api_version.clone(),
                    schema: serde_json::to_string(&schema).or_internal("encoding a schema")?,
                },
                kind,
                api_version,
                model_version: version.clone(),
                namespaced,
                schema,
            });
        }
        // The model a kind comes from: this one, else the registered one that has it.
        let model_of = |k: &str| -> Option<String> {
            if components.iter().any(|c| c.kind == k) {
                return Some(name.clone());
            }
            known
                .iter()
                .rev()
                .find(|e| e.model.components.iter().any(|c| c.kind == k))
                .map(|e| e.model.name.clone())
        };
        let has_kind = |k: &str| model_of(k).is_some();
        let mut relationships = Vec::new();
        for (i, r) in d.relationships.iter().enumerate() {
            for k in r.from.iter().chain(&r.to) {
                if !has_kind(k) {
                    return Err(bad(format!(
                        "{id}: relationship {i} names kind {k:?}, which neither this model nor the registry has"
                    )));
                }
            }
            let kind = match r.kind {
                crate::models::RelationshipDefinitionKind::Edge => RegistryRelationshipKind::Edge,
                crate::models::RelationshipDefinitionKind::Hierarchical => {
                    RegistryRelationshipKind::Hierarchical
                }
            };
            let sub_type = r
                .sub_type
                .as_ref()
                .map(|s| s.to_string())
                .unwrap_or_default();
            let description = r
                .description
                .as_ref()
                .map(|s| s.to_string())
                .unwrap_or_default();
            let side = |kinds: &[String]| -> Vec<RegistrySelectorItem> {
                kinds
                    .iter()
                    .map(|k| RegistrySelectorItem {
                        kind: k.clone(),
                        model: RegistrySelectorItemModel {
                            name: model_of(k).unwrap_or_else(|| name.clone()),
                        },
                    })
                    .collect()
            };
            relationships.push(RegistryRelationship {
                id: format!("{id}/relationships/{i}"),
                schema_version: "relationships.meshery.io/v1alpha3".into(),
                version: "v1.0.0".into(),
                evaluation_query: format!("{kind}_{}_{sub_type}_relationship", r.type_.as_str())
                    .to_lowercase(),
                selectors: vec![RegistryRelationshipSelectorsItem {
                    allow: RegistryRelationshipSelectorsItemAllow {
                        from: side(&r.from),
                        to: side(&r.to),
                    },
                }],
                kind,
                type_: r.type_.to_string(),
                sub_type,
                status: crate::models::RegistryRelationshipStatus::Enabled,
                capabilities: Vec::new(),
                metadata: RegistryRelationshipMetadata {
                    description: description.clone(),
                    is_annotation: false,
                },
                model: placeholder_ref(),
                model_id: id.clone(),
                from: r.from.clone(),
                to: r.to.clone(),
                description,
            });
        }
        let category = d
            .category
            .as_ref()
            .map(|s| s.to_string())
            .unwrap_or_else(|| "Uncategorized".into());
        let registrant = d
            .registrant
            .as_ref()
            .map(|s| s.to_string())
            .unwrap_or_else(|| "meshery".into());
        let display_name = d
            .display_name
            .as_ref()
            .map(|s| s.to_string())
            .unwrap_or_else(|| name.clone());
        let mut model = RegistryModel {
            schema_version: "models.meshery.io/v1beta1".into(),
            description: format!(
                "{display_name} {version}: {} component kinds, {} relationships",
                components.len(),
                relationships.len()
            ),
            display_name,
            status: crate::models::RegistryModelStatus::Enabled,
            category_id: uuid_of("category", &category),
            category: category_ref(&category),
            sub_category: String::new(),
            registrant_id: uuid_of("registrant", &registrant),
            registrant: registrant_ref(&registrant, built_in),
            metadata: model_metadata(),
            model: RegistryModelPackage {
                version: version.clone(),
            },
            id,
            name,
            version,
            built_in,
            components_count: int(components.len()),
            relationships_count: int(relationships.len()),
            components: Vec::new(),
            relationships: Vec::new(),
        };
        let parent = model_ref(&model);
        for c in &mut components {
            c.model = parent.clone();
            c.model_reference.display_name = parent.display_name.clone();
            c.model_reference.registrant.kind = parent.registrant.kind.clone();
        }
        for r in &mut relationships {
            r.model = parent.clone();
        }
        model.components = components;
        model.relationships = relationships;
        Ok(Entry { model, validators })
    }

    fn snapshot(&self) -> Vec<Arc<Entry>> {
        self.entries.read().clone()
    }

    /// Registers a model; it is stored and survives restarts.
    pub async fn register(
        &self,
        mut definition: ModelDefinition,
        registrant: &str,
    ) -> Result<RegistryModel, RegistryError> {
        if definition.registrant.is_none() {
            definition.registrant = registrant.parse().ok();
        }
        let known = self.snapshot();
        let entry = self.build(definition.clone(), false, &known)?;
        let model = entry.model.clone();
        if known.iter().any(|e| e.model.id == model.id) {
            return Err(RegistryError::Exists(model.id));
        }
        let doc = serde_json::to_string(&definition).or_internal("encoding a model")?;
        let stored = self
            .store
            .insert_registered_model(&model.id, &model.name, &model.version, &doc)
            .await
            .or_internal("storing a model")?;
        if !stored {
            return Err(RegistryError::Exists(model.id));
        }
        {
            let mut entries = self.entries.write();
            entries.push(Arc::new(entry));
            sort(&mut entries);
        }
        self.bus.publish(Topic::Registry, &model.id).await;
        Ok(model)
    }

    /// Checks a definition as [`Registry::register`] would, without registering it.
    pub fn validate(&self, definition: ModelDefinition) -> Result<RegistryModel, RegistryError> {
        let known = self.snapshot();
        let entry = self.build(definition, false, &known)?;
        if known.iter().any(|e| e.model.id == entry.model.id) {
            return Err(RegistryError::Exists(entry.model.id.clone()));
        }
        Ok(entry.model)
    }

    /// Deletes a registered model (by id, `<name>@<version>`): not a built-in one, nor one
    /// whose kinds another registered model's relationships name (it could not be loaded
    /// again at the next start).
    pub async fn delete(&self, id: &str) -> Result<RegistryModel, RegistryError> {
        let entries = self.snapshot();
        let Some(entry) = entries.iter().find(|e| e.model.id == id) else {
            let (name, version) = id.split_once('@').unwrap_or((id, ""));
            return Err(RegistryError::NoModel {
                name: name.to_string(),
                version: Some(version.to_string()).filter(|v| !v.is_empty()),
            });
        };
        if entry.model.built_in {
            return Err(RegistryError::BuiltIn(id.to_string()));
        }
        let kinds: Vec<&str> = entry
            .model
            .components
            .iter()
            .map(|c| c.kind.as_str())
            .collect();
        let dependents: Vec<&str> = entries
            .iter()
            .filter(|e| !e.model.built_in && e.model.id != id)
            .filter(|e| {
                e.model.relationships.iter().any(|r| {
                    r.from.iter().chain(&r.to).any(|k| {
                        kinds.contains(&k.as_str())
                            && !e.model.components.iter().any(|c| c.kind == *k)
                    })
                })
            })
            .map(|e| e.model.id.as_str())
            .collect();
        if !dependents.is_empty() {
            return Err(RegistryError::InUse {
                id: id.to_string(),
                dependents: dependents.join(", "),
            });
        }
        self.store
            .delete_registered_model(id)
            .await
            .or_internal("deleting a model")?;
        self.entries.write().retain(|e| e.model.id != id);
        self.bus.publish(Topic::Registry, id).await;
        Ok(entry.model.clone())
    }

    /// Models matching the filters (newest version last within a name).
    pub fn models(
        &self,
        version: Option<&str>,
        category: Option<&str>,
        registrant: Option<&str>,
    ) -> Vec<RegistryModel> {
        self.snapshot()
            .iter()
            .map(|e| &e.model)
            .filter(|m| version.is_none_or(|v| m.version == v))
            .filter(|m| category.is_none_or(|c| m.category.name.eq_ignore_ascii_case(c)))
            .filter(|m| registrant.is_none_or(|r| m.registrant.name.eq_ignore_ascii_case(r)))
            .cloned()
            .collect()
    }

    /// One model by name: the given version, or the newest.
    pub fn model(&self, name: &str, version: Option<&str>) -> Result<RegistryModel, RegistryError> {
        self.snapshot()
            .iter()
            .rev()
            .map(|e| &e.model)
            .find(|m| m.name == name && version.is_none_or(|v| m.version == v))
            .cloned()
            .ok_or_else(|| RegistryError::NoModel {
                name: name.to_string(),
                version: version.map(str::to_string),
            })
    }

    pub fn components(&self) -> Vec<RegistryComponent> {
        self.snapshot()
            .iter()
            .flat_map(|e| e.model.components.clone())
            .collect()
    }

    pub fn relationships(&self) -> Vec<RegistryRelationship> {
        self.snapshot()
            .iter()
            .flat_map(|e| e.model.relationships.clone())
            .collect()
    }

    pub fn categories(&self) -> Vec<RegistryCategory> {
        let mut counts: BTreeMap<String, i64> = BTreeMap::new();
        for e in self.snapshot() {
            *counts.entry(e.model.category.name.clone()).or_default() += 1;
        }
        counts
            .into_iter()
            .map(|(name, models_count)| RegistryCategory { name, models_count })
            .collect()
    }

    pub fn registrants(&self) -> Vec<RegistryRegistrant> {
        let mut counts: BTreeMap<String, i64> = BTreeMap::new();
        for e in self.snapshot() {
            *counts.entry(e.model.registrant.name.clone()).or_default() += 1;
        }
        counts
            .into_iter()
            .map(|(name, models_count)| RegistryRegistrant { name, models_count })
            .collect()
    }

    /// Checks a resource of `api_version`/`kind` against the newest registered schema of
    /// that kind; `Err` when the kind is not registered.
    pub fn check(
        &self,
        api_version: &str,
        kind: &str,
        resource: &Value,
    ) -> Result<Vec<Finding>, Unregistered> {
        let key = (api_version.to_string(), kind.to_string());
        let entries = self.snapshot();
        let Some(validator) = entries.iter().rev().find_map(|e| e.validators.get(&key)) else {
            let other: Vec<String> = entries
                .iter()
                .flat_map(|e| e.model.components.iter())
                .filter(|c| c.kind == kind)
                .map(|c| c.api_version.clone())
                .collect();
            return Err(Unregistered {
                kind: kind.to_string(),
                api_version: api_version.to_string(),
                registered: other,
            });
        };
        Ok(validator
            .iter_errors(resource)
            .map(|e| Finding {
                path: e.instance_path().to_string(),
                message: e.to_string(),
            })
            .collect())
    }
}

/// What a component's or relationship's `model` holds until its model is built.
fn placeholder_ref() -> RegistryModelRef {
    RegistryModelRef {
        id: String::new(),
        schema_version: String::new(),
        name: String::new(),
        display_name: String::new(),
        version: String::new(),
        status: String::new(),
        category: category_ref(""),
        registrant: registrant_ref("", true),
        model: RegistryModelPackage {
            version: String::new(),
        },
        metadata: model_metadata(),
    }
}

fn sort(entries: &mut [Arc<Entry>]) {
    entries.sort_by(|a, b| {
        (a.model.name.as_str(), version_key(&a.model.version))
            .cmp(&(b.model.name.as_str(), version_key(&b.model.version)))
    });
}
