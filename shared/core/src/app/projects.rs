//! OmniStack's projects: each user's own.

use super::App;
use crate::error::DomainResult;
use crate::identity::access::Principal;
use crate::model::RecordId;
use crate::projects::{self, NewProject, ProjectPatch, ProjectView};

impl App {
    /// The caller's live projects, newest first, filtered by name.
    pub async fn projects(&self, caller: &Principal, search: Option<&str>) -> DomainResult<Vec<ProjectView>> {
        projects::list(self.store(), caller, search).await
    }

    pub async fn project(&self, caller: &Principal, id: &RecordId) -> DomainResult<ProjectView> {
        projects::get(self.store(), caller, id).await
    }

    pub async fn create_project(&self, caller: &Principal, new: NewProject) -> DomainResult<ProjectView> {
        projects::create(self.store(), caller, new).await
    }

    pub async fn update_project(
        &self,
        caller: &Principal,
        id: &RecordId,
        patch: ProjectPatch,
    ) -> DomainResult<ProjectView> {
        projects::update(self.store(), caller, id, patch).await
    }

    /// Soft delete: a 404 from then on.
    pub async fn delete_project(&self, caller: &Principal, id: &RecordId) -> DomainResult<()> {
        projects::delete(self.store(), caller, id).await
    }
}
