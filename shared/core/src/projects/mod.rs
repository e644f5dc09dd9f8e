//! OmniStack's projects: named records each user keeps for themselves.
//!
//! A project belongs to the user who made it (`owner_id`) in that user's
//! environment: every read and write is built from the caller's tenant and
//! user id (`keys::project`, `keys::projects`), so another user's or another
//! environment's project is a 404 by construction. Any active account may
//! keep projects; no permission beyond being signed in is asked. Deleting is
//! soft: the record keeps `deleted_at` and is a 404 and unlisted from then.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};

use crate::error::{DomainError, DomainResult};
use crate::identity::access::Principal;
use crate::keys;
use crate::model::{Name, RecordId};
use crate::ports::Condition;
use crate::store::{Store, to_item};

/// Longest project description (OmniStack: max 2000 characters).
pub const MAX_DESCRIPTION: usize = 2000;
/// Longest `search` text.
pub const MAX_SEARCH: usize = 255;

/// A stored project.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Project {
    pub id: RecordId,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub owner_id: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Set when deleted (soft delete).
    #[serde(default)]
    pub deleted_at: Option<DateTime<Utc>>,
    pub version: u64,
}

/// A project as the API shows it.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ProjectView {
    pub id: RecordId,
    pub name: String,
    pub description: Option<String>,
    /// The user who owns it (the caller).
    pub owner_id: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Project> for ProjectView {
    fn from(project: Project) -> Self {
        ProjectView {
            id: project.id,
            name: project.name,
            description: project.description,
            owner_id: project.owner_id,
            created_at: project.created_at,
            updated_at: project.updated_at,
        }
    }
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProject {
    /// 1-255 characters (trimmed).
    pub name: Name,
    #[serde(default)]
    #[schemars(length(max = MAX_DESCRIPTION))]
    pub description: Option<String>,
}

/// A change: only the fields sent change; `"description": null` clears it.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectPatch {
    #[serde(default)]
    pub name: Option<Name>,
    #[serde(default, deserialize_with = "present")]
    #[schemars(with = "Option<String>", length(max = MAX_DESCRIPTION))]
    pub description: Option<Option<String>>,
}

/// A field that was sent, as `null` or a value (an absent one stays `None`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

fn check_description(description: Option<&str>) -> DomainResult<()> {
    match description {
        Some(text) if text.chars().count() > MAX_DESCRIPTION => Err(DomainError::validation(
            "description",
            format!("must be at most {MAX_DESCRIPTION} characters"),
        )),
        Some(text) if text.contains('\0') => Err(DomainError::validation("description", "must not contain NUL")),
        _ => Ok(()),
    }
}

/// The caller's live project `id`; a 404 naming it otherwise (absent,
/// deleted, someone else's).
async fn live(store: &Store, caller: &Principal, id: &RecordId) -> DomainResult<Project> {
    store
        .get::<Project>(&keys::project(caller.tenant(), caller.user_id, id))
        .await?
        .filter(|project| project.deleted_at.is_none())
        .ok_or_else(|| DomainError::not_found("Project", id))
}

pub async fn get(store: &Store, caller: &Principal, id: &RecordId) -> DomainResult<ProjectView> {
    live(store, caller, id).await.map(ProjectView::from)
}

/// The caller's live projects, newest first, those whose name contains
/// `search` (case-insensitive) when given.
pub async fn list(store: &Store, caller: &Principal, search: Option<&str>) -> DomainResult<Vec<ProjectView>> {
    let needle = search.map(str::trim).filter(|s| !s.is_empty()).map(str::to_lowercase);
    if needle.as_ref().is_some_and(|n| n.chars().count() > MAX_SEARCH) {
        return Err(DomainError::validation(
            "search",
            format!("must be at most {MAX_SEARCH} characters"),
        ));
    }
    let mut projects: Vec<Project> = store.query_all(keys::projects(caller.tenant(), caller.user_id)).await?;
    projects.retain(|project| {
        project.deleted_at.is_none()
            && needle
                .as_deref()
                .is_none_or(|needle| project.name.to_lowercase().contains(needle))
    });
    projects.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| b.id.cmp(&a.id)));
    Ok(projects.into_iter().map(ProjectView::from).collect())
}

pub async fn create(store: &Store, caller: &Principal, new: NewProject) -> DomainResult<ProjectView> {
    check_description(new.description.as_deref())?;
    let now = store.now();
    let project = Project {
        id: RecordId::new_v4(),
        name: new.name.into_inner(),
        description: new.description,
        owner_id: caller.user_id,
        created_at: now,
        updated_at: now,
        deleted_at: None,
        version: 1,
    };
    let key = keys::project(caller.tenant(), caller.user_id, &project.id);
    store
        .table()
        .put(to_item(&key, &project, &[])?, Condition::NotExists)
        .await?;
    Ok(project.into())
}

/// Writes `project` over the stored one if it is still at the version read.
async fn save(store: &Store, caller: &Principal, project: &mut Project) -> DomainResult<()> {
    let expected = project.version;
    project.version += 1;
    project.updated_at = store.now();
    let key = keys::project(caller.tenant(), caller.user_id, &project.id);
    store.replace(&key, &*project, &[], expected, "project").await
}

pub async fn update(
    store: &Store,
    caller: &Principal,
    id: &RecordId,
    patch: ProjectPatch,
) -> DomainResult<ProjectView> {
    if let Some(description) = &patch.description {
        check_description(description.as_deref())?;
    }
    let mut project = live(store, caller, id).await?;
    if let Some(name) = patch.name {
        project.name = name.into_inner();
    }
    if let Some(description) = patch.description {
        project.description = description;
    }
    save(store, caller, &mut project).await?;
    Ok(project.into())
}

/// Soft delete: `deleted_at` set; from then on a 404, and not listed.
pub async fn delete(store: &Store, caller: &Principal, id: &RecordId) -> DomainResult<()> {
    let mut project = live(store, caller, id).await?;
    project.deleted_at = Some(store.now());
    save(store, caller, &mut project).await
}
